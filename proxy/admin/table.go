package admin

import (
	"fmt"
	"time"

	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/baton-proxy/baton/topology"
)

// maxErrWidth bounds the LAST-ERROR column so one long driver message does not wrap the table.
const maxErrWidth = 60

// WriteTable renders doc as the aligned table `baton status` prints: one row per node, then one
// summary line per cluster. SESSIONS of a node counts the backend connections client sessions
// hold on it (open minus idle); the summary line has the cluster's client sessions.
func WriteTable(w io.Writer, doc *ClustersResponse) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CLUSTER\tNODE\tROLE\tSTATE\tREADABLE\tLAG\tSESSIONS\tLAST-ERROR")
	for _, c := range doc.Clusters {
		for _, n := range c.Nodes {
			last := n.LastError
			if last == "" && n.Unreadable != "" && n.Role == "replica" {
				last = n.Unreadable
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", cell(c.Name), cell(n.Name), cell(n.Role), nodeState(n),
				yesNo(n.Readable), lagCell(n), n.Connections.InUse(), cell(shorten(last, maxErrWidth)))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range doc.Clusters {
		primary := c.Primary
		if primary == "" {
			primary = "NONE"
		}
		_, err := fmt.Fprintf(w, "\ncluster %s (%s, %s, %s): primary %s, %d readable replicas, %d sessions, statements %d primary / %d replica, %d misroutes, %d retries",
			c.Name, c.Engine, c.Listen, c.Consistency, primary, c.ReadableReplicas, c.Sessions,
			c.Statements.Primary, c.Statements.Replica, c.Misroutes, c.Retries)
		if err != nil {
			return err
		}
		if pinned := pinnedLine(c.Pinned); pinned != "" {
			fmt.Fprintf(w, "\n  pinned sessions: %s", pinned)
		}
		if c.Epoch > 0 {
			fmt.Fprintf(w, "\n  epoch %d, %s", c.Epoch, c.Phase)
			if c.Coordinator != "" {
				fmt.Fprintf(w, ", coordinator %s", c.Coordinator)
			}
			if c.Buffered > 0 {
				fmt.Fprintf(w, ", %d statements waiting for a primary", c.Buffered)
			}
			if c.StateReason != "" {
				fmt.Fprintf(w, " (%s)", shorten(c.StateReason, 100))
			}
		}
		if c.FailoverPaused && c.Pause != nil {
			fmt.Fprintf(w, "\n  AUTOMATIC FAILOVER PAUSED by %s since %s", c.Pause.By, c.Pause.Since.Local().Format("2006-01-02 15:04:05"))
			if c.Pause.Reason != "" {
				fmt.Fprintf(w, " (%s)", shorten(c.Pause.Reason, 100))
			}
			fmt.Fprintf(w, ": `baton resume --cluster %s` resumes it", c.Name)
		}
		for _, d := range c.Diverged {
			fmt.Fprintf(w, "\n  node %s: diverged, needs rewind: %s\n    %s", d.Node, d.Detail, strings.ReplaceAll(d.Steps, "\n", "\n    "))
		}
		if c.Alert != "" {
			fmt.Fprintf(w, "\n  ALERT since %s: %s", c.AlertSince.Local().Format("15:04:05"), c.Alert)
		}
		// The last few primary changes, newest last.
		var changes []topology.Event
		for _, e := range c.History {
			if e.Kind != "initial" {
				changes = append(changes, e)
			}
		}
		if len(changes) > 3 {
			changes = changes[len(changes)-3:]
		}
		for _, e := range changes {
			to := e.To
			if e.Error != "" {
				to = "FAILED: " + shorten(e.Error, 80)
			}
			fmt.Fprintf(w, "\n  %s %s epoch %d: %s -> %s in %v", e.Started.Local().Format("15:04:05"), e.Kind, e.Epoch,
				e.From, to, e.Duration.Round(time.Millisecond))
		}
	}
	if len(doc.Clusters) > 0 {
		_, err := fmt.Fprintln(w)
		return err
	}
	return nil
}

// lagCell renders a replica's lag: time, and bytes where known ("-" for a primary or unknown).
func lagCell(n NodeStatus) string {
	if n.Role != "replica" || n.LagSeconds < 0 {
		return "-"
	}
	out := fmt.Sprintf("%.1fs", n.LagSeconds)
	if n.LagBytes > 0 {
		out += fmt.Sprintf(" %dB", n.LagBytes)
	}
	return out
}

// nodeState is up, down or drain; a node that is down shows down whether or not it drains.
func nodeState(n NodeStatus) string {
	switch {
	case !n.Up:
		return "down"
	case n.Diverged != "":
		return "diverged"
	case n.Fenced:
		return "fenced"
	case n.Drain:
		return "drain"
	}
	return "up"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// cell makes s safe for one tabwriter cell: no tabs or line breaks, "-" when empty.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r', '\v', '\f':
			return ' '
		}
		return r
	}, s)
}

// shorten cuts s to at most n runes, marking the cut with "…".
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// pinnedLine renders the non-zero pinned-session counts, most first ("" when none).
func pinnedLine(m map[string]int64) string {
	type kv struct {
		k string
		v int64
	}
	var kvs []kv
	for k, v := range m {
		if v > 0 {
			kvs = append(kvs, kv{k, v})
		}
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].v > kvs[j].v || kvs[i].v == kvs[j].v && kvs[i].k < kvs[j].k })
	parts := make([]string, len(kvs))
	for i, e := range kvs {
		parts[i] = fmt.Sprintf("%d %s", e.v, e.k)
	}
	return strings.Join(parts, ", ")
}
