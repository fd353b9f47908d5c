package main

import (
	"fmt"

	"github.com/baton-proxy/baton/test/cluster"
	"github.com/baton-proxy/baton/topology"
)

// demoBackendTLS makes baton connect to the demo's nodes, which run TLS with certificates from
// a CA the demo generated (files), with verify-full against that CA: every connection baton
// opens to them (pools, probes, failover steps, cancel requests) is encrypted and verified.
func demoBackendTLS(cl *topology.Cluster, files *cluster.TLSFiles) error {
	cl.BackendTLS = topology.BackendTLS{Mode: topology.TLSVerifyFull, CAFile: files.CAFile}
	for _, n := range cl.Nodes {
		n.BackendTLS = nil
	}
	if err := cl.ResolveBackendTLS(); err != nil {
		return err
	}
	fmt.Printf("baton demo: %s nodes run TLS; baton verifies them (backend_tls verify-full, ca_file %s)\n", cl.Name, files.CAFile)
	return nil
}
