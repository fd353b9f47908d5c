package mywire

import "strings"

// Session-state information (OK.SessionState) is a sequence of entries: one type byte and a
// length-encoded data string. Entries of unknown types are skipped by their length.

// walkSessionState calls fn for every well-formed entry of ss, in order, and stops at the
// first malformed one.
func walkSessionState(ss []byte, fn func(typ byte, data []byte)) {
	for len(ss) > 0 {
		typ := ss[0]
		data, n, ok := ReadLenEncString(ss[1:])
		if !ok {
			return
		}
		fn(typ, data)
		ss = ss[1+n:]
	}
}

// TrackedSystemVariables returns the system variables reported in ss (entries of type
// SessionTrackSystemVariables) by name; a later entry for the same name wins. It returns nil
// when there is none.
func TrackedSystemVariables(ss []byte) map[string]string {
	var vars map[string]string
	walkSessionState(ss, func(typ byte, data []byte) {
		if typ != SessionTrackSystemVariables {
			return
		}
		c := cursor{b: data}
		name := c.lenencBytes()
		value := c.lenencBytes()
		if c.bad {
			return
		}
		if vars == nil {
			vars = make(map[string]string)
		}
		vars[string(name)] = string(value)
	})
	return vars
}

// TrackedSchema returns the current schema reported in ss (the last SessionTrackSchema entry).
func TrackedSchema(ss []byte) (string, bool) {
	var schema string
	var found bool
	walkSessionState(ss, func(typ byte, data []byte) {
		if typ != SessionTrackSchema {
			return
		}
		c := cursor{b: data}
		name := c.lenencBytes()
		if !c.bad {
			schema, found = string(name), true
		}
	})
	return schema, found
}

// TrackedGTIDs returns the GTID set reported in ss: the last SessionTrackGTIDs entry (MySQL,
// session_track_gtids=OWN_GTID or ALL_GTIDS) or, when there is none, the tracked system
// variable last_gtid (MariaDB, which has no GTID entry type: it needs
// session_track_system_variables to include last_gtid).
func TrackedGTIDs(ss []byte) (string, bool) {
	var gtids string
	var found bool
	walkSessionState(ss, func(typ byte, data []byte) {
		if typ != SessionTrackGTIDs {
			return
		}
		c := cursor{b: data}
		c.u8() // encoding specification: 0 = text
		set := c.lenencBytes()
		if !c.bad {
			gtids, found = string(set), true
		}
	})
	if found {
		return gtids, true
	}
	if v, ok := TrackedSystemVariables(ss)["last_gtid"]; ok {
		return v, true
	}
	return "", false
}

// StripTrackedVariable returns ss without the SessionTrackSystemVariables entries for the
// variable name (compared case-insensitively), and whether it removed any. Other entries are
// kept byte for byte, in order; a malformed tail is kept as it is. ss is not modified.
func StripTrackedVariable(ss []byte, name string) ([]byte, bool) {
	var out []byte
	removed := false
	rest := ss
	for len(rest) > 0 {
		data, n, ok := ReadLenEncString(rest[1:])
		if !ok {
			break
		}
		entry := rest[:1+n]
		rest = rest[1+n:]
		if entry[0] == SessionTrackSystemVariables {
			c := cursor{b: data}
			if v := c.lenencBytes(); !c.bad && strings.EqualFold(string(v), name) {
				if !removed {
					out = append(make([]byte, 0, len(ss)), ss[:len(ss)-len(rest)-len(entry)]...)
					removed = true
				}
				continue
			}
		}
		if removed {
			out = append(out, entry...)
		}
	}
	if !removed {
		return ss, false
	}
	return append(out, rest...), true
}
