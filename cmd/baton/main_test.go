package main

import (
	"path/filepath"
	"testing"

	"github.com/baton-proxy/baton/topology"
)

// Every example configuration must load as it is.
func TestExampleConfigsLoad(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configs: %v", err)
	}
	for _, f := range files {
		if _, err := topology.Load(f); err != nil {
			t.Errorf("%v", err)
		}
	}
}
