package topology

import (
	"strings"
	"testing"
	"time"
)

// TestEvidenceFields: confirm_probes, confirm_interval and grace default, and out-of-range
// values are errors naming the field.
func TestEvidenceFields(t *testing.T) {
	cfg, err := Parse("x.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	cl := cfg.Clusters[0]
	if cl.ConfirmProbes != DefaultConfirmProbes || cl.ConfirmInterval.D() != DefaultConfirmInterval ||
		cl.Failover.Grace.D() != 300*time.Millisecond || cl.FailureThreshold != 2 {
		t.Fatalf("defaults: confirm_probes %d confirm_interval %v grace %v failure_threshold %d",
			cl.ConfirmProbes, cl.ConfirmInterval, cl.Failover.Grace, cl.FailureThreshold)
	}
	set := "    confirm_probes: 5\n    confirm_interval: 50ms\n    failover: {grace: 2s}\n    nodes:\n"
	if cfg, err = Parse("x.yaml", []byte(strings.Replace(good, "    nodes:\n", set, 1))); err != nil {
		t.Fatal(err)
	}
	if cl := cfg.Clusters[0]; cl.ConfirmProbes != 5 || cl.ConfirmInterval.D() != 50*time.Millisecond || cl.Failover.Grace.D() != 2*time.Second {
		t.Fatalf("set: %d %v %v", cl.ConfirmProbes, cl.ConfirmInterval, cl.Failover.Grace)
	}
	for _, tt := range []struct{ line, field string }{
		{"confirm_probes: 21", "clusters[0].confirm_probes"},
		{"confirm_probes: -1", "clusters[0].confirm_probes"},
		{"confirm_interval: 2s", "clusters[0].confirm_interval"},
		{"failover: {grace: -1s}", "clusters[0].failover.grace"},
	} {
		_, err := Parse("x.yaml", []byte(strings.Replace(good, "    nodes:\n", "    "+tt.line+"\n    nodes:\n", 1)))
		e, ok := err.(*Error)
		if !ok || e.Field != tt.field {
			t.Errorf("%s: got %v, want an error on %s", tt.line, err, tt.field)
		}
	}
}
