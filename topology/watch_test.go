package topology

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The watcher sees an editor's replace-by-rename, and reports a broken edit with its line.
func TestWatchReloadsAndReportsErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "baton.yaml")
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan *Config, 4)
	errs := make(chan error, 4)
	go Watch(ctx, path, func(c *Config) { changes <- c }, func(err error) { errs <- err })
	replace := func(text string) {
		tmp := filepath.Join(dir, ".baton.yaml.swp")
		if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	// The watcher may not be registered yet: repeat the edit until it is seen.
	deadline := time.After(10 * time.Second)
	for seen := false; !seen; {
		replace(strings.Replace(good, "weight: 2", "weight: 5", 1))
		select {
		case c := <-changes:
			if c.Clusters[0].Nodes[1].ReadWeight() != 5 {
				t.Fatalf("reloaded weight %d", c.Clusters[0].Nodes[1].ReadWeight())
			}
			seen = true
		case err := <-errs:
			t.Fatal(err)
		case <-time.After(300 * time.Millisecond):
		case <-deadline:
			t.Fatal("no reload after the file was replaced")
		}
	}
	replace(strings.Replace(good, "weight: 2", "weight: -3", 1))
	select {
	case err := <-errs:
		e, ok := err.(*Error)
		if !ok || e.Line != 10 || e.Field != "clusters[0].nodes[1].weight" {
			t.Fatalf("broken edit reported as %v", err)
		}
	case c := <-changes:
		t.Fatalf("a broken file was applied: %+v", c)
	case <-time.After(10 * time.Second):
		t.Fatal("a broken edit was not reported")
	}
}
