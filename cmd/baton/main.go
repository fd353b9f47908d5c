// Command baton is a replication-aware SQL proxy. See README.md.
//
//	baton serve --config FILE        run the proxy
//	baton check-config FILE          validate a configuration and exit
//	baton demo [--ready-file PATH]   start local PostgreSQL and MariaDB clusters with baton in front
//	baton status [--admin URL]       show clusters, nodes and roles from a running baton
//	baton switchover --cluster C [--to N]      planned primary change, no data loss
//	baton failover --cluster C [--to N] [--force]   replace a dead primary by hand
//	baton rejoin --cluster C --node N          re-attach an old MySQL/MariaDB primary as a replica
//	baton pause --cluster C [--reason R]       suspend automatic failover (maintenance)
//	baton resume --cluster C                   resume automatic failover
//	baton version
package main

import (
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

func usage() {
	fmt.Fprint(os.Stderr, `baton — a replication-aware SQL proxy

Usage:
  baton serve --config FILE         run the proxy for the clusters in FILE
  baton check-config FILE           validate FILE and exit (non-zero on error)
  baton demo [flags]                start local PostgreSQL and MariaDB clusters (a primary and
                                    2 replicas each) with baton in front; Ctrl-C stops all
  baton status [--admin URL]        show a running baton's clusters, nodes and roles (--json)
  baton switchover --cluster C [--to NODE]
                                    planned primary change with no data loss
  baton failover --cluster C [--to NODE] [--force]
                                    replace the primary now (automation off, or refused)
  baton rejoin --cluster C --node NODE
                                    re-attach a fenced old MySQL/MariaDB primary as a replica
  baton pause --cluster C [--reason TEXT]
                                    suspend automatic failover (e.g. to restart the primary);
                                    switchover and failover by hand still work
  baton resume --cluster C          resume automatic failover
  baton version                     print the version

Run 'baton COMMAND -h' for a command's flags.
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = cmdServe(os.Args[2:])
	case "check-config":
		err = cmdCheckConfig(os.Args[2:])
	case "demo":
		err = cmdDemo(os.Args[2:])
	case "status":
		err = cmdStatus(os.Args[2:])
	case "switchover", "failover", "rejoin", "pause", "resume":
		err = cmdControl(os.Args[1], os.Args[2:])
	case "version", "--version", "-v":
		fmt.Println("baton", version)
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "baton: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "baton:", err)
		os.Exit(1)
	}
}

func init() {
	// BATON_PPROF=127.0.0.1:6060 serves net/http/pprof for profiling (loopback only by intent).
	if addr := os.Getenv("BATON_PPROF"); addr != "" {
		go func() { fmt.Fprintln(os.Stderr, "pprof:", http.ListenAndServe(addr, nil)) }()
	}
}
