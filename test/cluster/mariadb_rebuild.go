package cluster

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// Rebuild makes n, a former primary that may hold transactions primary lacks (a diverged node,
// which `baton rejoin` refuses), a replica of primary again, the way an operator rebuilds a
// MariaDB node from a logical backup of the new primary:
//
//   - n is started if it is not running, made read-only and detached (STOP SLAVE, RESET SLAVE
//     ALL); its copy of AppDB is dropped and its binlogs and GTID positions are reset (RESET
//     MASTER, gtid_slave_pos ”), without writing to its binlog;
//   - mariadb-dump --single-transaction --master-data=2 --gtid takes a consistent dump of AppDB
//     on primary together with the GTID position it corresponds to, and the mariadb client loads
//     it into n with sql_log_bin off;
//   - n replicates from primary from that position (MASTER_USE_GTID=slave_pos) and Rebuild
//     returns once it has caught up with it.
//
// On success c.Primary becomes primary and c.Replicas the other nodes, as after PGCluster.Rejoin;
// every node but primary starts read-only from now on. Rebuild must not run concurrently with
// other calls that read those fields.
func (c *MyCluster) Rebuild(ctx context.Context, n, primary *MyNode) error {
	if n == primary || n.c != c || primary.c != c {
		return fmt.Errorf("cluster: Rebuild needs two different nodes of this cluster")
	}
	fail := func(step string, err error) error {
		return fmt.Errorf("cluster: rebuild %s from %s: %s: %w", n.Name, primary.Name, step, err)
	}
	n.opMu.Lock()
	n.replica = true // read_only=ON from its next start on
	n.opMu.Unlock()
	if !n.Running() {
		if err := n.Start(ctx); err != nil {
			return fail("start", err)
		}
	}
	db := n.rootDB()
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fail("connect", err)
	}
	defer conn.Close()
	for _, q := range []string{
		"SET SESSION sql_log_bin = 0",
		"SET GLOBAL read_only = ON",
		"STOP SLAVE",
		"RESET SLAVE ALL",
		"DROP DATABASE IF EXISTS " + myIdent(c.Opts.AppDB),
		"RESET MASTER",
		"SET GLOBAL gtid_slave_pos = ''",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fail(q, err)
		}
	}
	dump, err := c.client(ctx, "mariadb-dump", primary, nil, "--single-transaction", "--master-data=2", "--gtid",
		"--databases", c.Opts.AppDB)
	if err != nil {
		return fail("mariadb-dump", err)
	}
	m := regexp.MustCompile(`gtid_slave_pos\s*=\s*'([0-9,\-]*)'`).FindSubmatch(dump)
	if m == nil {
		return fail("mariadb-dump", fmt.Errorf("no gtid_slave_pos in the dump"))
	}
	pos := string(m[1])
	if _, err := c.client(ctx, "mariadb", n, dump, "--init-command=SET SESSION sql_log_bin = 0"); err != nil {
		return fail("load the dump", err)
	}
	host, port, err := net.SplitHostPort(primary.Addr())
	if err != nil {
		return fail("primary address", err)
	}
	for _, q := range []string{
		"SET GLOBAL gtid_slave_pos = " + myLiteral(pos),
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST = %s, MASTER_PORT = %s, MASTER_USER = %s, MASTER_PASSWORD = %s, "+
			"MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1", myLiteral(host), port, myLiteral(myReplUser), myLiteral(myReplPassword)),
		"START SLAVE",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fail(strings.SplitN(q, " =", 2)[0], err)
		}
	}
	if err := n.waitReplica(ctx, pos); err != nil {
		return fail("catch up", err)
	}
	c.Opts.Logf("cluster: %s rebuilt from %s at GTID %s", n.Name, primary.Name, pos)
	c.setPrimary(primary)
	return nil
}

// Promoted records that p became the primary (a failover or switchover outside the harness):
// from their next start on, p runs writable and every other node read-only, and c.Primary /
// c.Replicas follow the roles.
func (c *MyCluster) Promoted(p *MyNode) { c.setPrimary(p) }

func (c *MyCluster) setPrimary(p *MyNode) {
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	nodes := c.Nodes()
	c.Primary, c.Replicas = p, nil
	for _, n := range nodes {
		n.opMu.Lock()
		n.replica = n != p
		n.opMu.Unlock()
		if n != p {
			c.Replicas = append(c.Replicas, n)
		}
	}
}

// client runs a MariaDB client program (mariadb, mariadb-dump) as root against node n over TCP,
// with stdin on its standard input, and returns its standard output. The password travels in
// the environment, never on the command line.
func (c *MyCluster) client(ctx context.Context, prog string, n *MyNode, stdin []byte, args ...string) ([]byte, error) {
	path := lookExecutable(prog, "/usr/bin", "/usr/local/bin")
	if path == "" {
		return nil, fmt.Errorf("%s not found (install mariadb-client)", prog)
	}
	host, port, err := net.SplitHostPort(n.Addr())
	if err != nil {
		return nil, err
	}
	argv := append([]string{"--no-defaults", "--protocol=TCP", "--host=" + host, "--port=" + port, "--user=root", "--skip-ssl"}, args...)
	cmd := exec.CommandContext(ctx, path, argv...)
	for _, kv := range os.Environ() {
		if k := strings.ToUpper(kv); !strings.HasPrefix(k, "MYSQL") && !strings.HasPrefix(k, "MARIADB") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "MYSQL_PWD="+c.Opts.RootPassword)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", prog, err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}
