package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/baton-proxy/baton/topology"
)

// cmdControl runs `baton switchover|failover|rejoin|pause|resume`: it POSTs the request to a
// running baton's admin API, which hands it to the cluster's coordinator (pause and resume: sets
// or deletes the cluster's pause key in etcd), and prints the outcome.
func cmdControl(kind string, args []string) error {
	fs := flag.NewFlagSet(kind, flag.ExitOnError)
	admin := fs.String("admin", envOr("BATON_ADMIN", defaultAdminURL), "admin server URL (env BATON_ADMIN)")
	token := fs.String("token", os.Getenv("BATON_ADMIN_TOKEN"), "admin bearer token (env BATON_ADMIN_TOKEN)")
	cluster := fs.String("cluster", "", "cluster name (required)")
	timeout := fs.Duration("timeout", 3*time.Minute, "give up after this long")
	var to, node, reason *string
	var force *bool
	switch kind {
	case "switchover":
		to = fs.String("to", "", "the replica to promote (default: the most up-to-date one)")
	case "failover":
		to = fs.String("to", "", "the replica to promote (default: the most up-to-date one)")
		force = fs.Bool("force", false, "fail over even if the primary answers, within min_interval, or beyond max_data_loss")
	case "rejoin":
		node = fs.String("node", "", "the fenced old primary to re-attach as a replica (MySQL/MariaDB)")
	case "pause":
		reason = fs.String("reason", "", "why (shown in baton status)")
	}
	fs.Parse(args)
	if *cluster == "" || fs.NArg() != 0 || (node != nil && *node == "") {
		fs.Usage()
		return fmt.Errorf("usage: baton %s --cluster C %s", kind, map[string]string{
			"switchover": "[--to NODE]", "failover": "[--to NODE] [--force]", "rejoin": "--node NODE",
			"pause": "[--reason TEXT]", "resume": ""}[kind])
	}
	q := url.Values{}
	if to != nil && *to != "" {
		q.Set("to", *to)
	}
	if force != nil && *force {
		q.Set("force", "true")
	}
	if node != nil {
		q.Set("node", *node)
	}
	if reason != nil && *reason != "" {
		q.Set("reason", *reason)
	}
	base := strings.TrimRight(*admin, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u := base + "/api/v1/clusters/" + url.PathEscape(*cluster) + "/" + kind
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	started := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the admin server: %w (is baton running? see --admin, BATON_ADMIN)", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var res topology.Result
	if json.Unmarshal(body, &res) != nil || (res.Error == "" && !res.OK) {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s: %s", kind, e.Error)
		}
		return fmt.Errorf("%s: %s: %s", kind, resp.Status, strings.TrimSpace(string(body)))
	}
	if !res.OK {
		printEvent(res.Event)
		return errors.New(kind + " refused or failed: " + res.Error)
	}
	switch kind {
	case "pause":
		fmt.Printf("automatic failover of cluster %s is paused (primary %s, epoch %d); switchover and `baton failover` still work; `baton resume --cluster %s` resumes it\n", *cluster, res.Primary, res.Epoch, *cluster)
		return nil
	case "resume":
		fmt.Printf("automatic failover of cluster %s is resumed (primary %s, epoch %d)\n", *cluster, res.Primary, res.Epoch)
		return nil
	}
	fmt.Printf("%s done in %v: cluster %s primary %s, epoch %d\n", kind, time.Since(started).Round(time.Millisecond), *cluster, res.Primary, res.Epoch)
	printEvent(res.Event)
	return nil
}

// printEvent prints the steps of a failover or switchover.
func printEvent(ev *topology.Event) {
	if ev == nil {
		return
	}
	for _, s := range ev.Steps {
		line := fmt.Sprintf("  %-16s %v", s.Name, s.Duration.Round(time.Microsecond))
		if s.Error != "" {
			line += "  " + s.Error
		}
		fmt.Println(line)
	}
}
