// Package mywire is the MySQL / MariaDB client/server protocol as a proxy needs it, on both
// sides: the server side of the connection phase (greeting, TLS, authentication) for clients,
// the client side (Connect) for backends, framing, the generic OK/ERR/EOF packets, and a
// Tracker that tells where the response to a command ends and which status flags it left.
//
// It is a leaf codec: it imports only the standard library, does not log, and treats every
// byte from a peer as hostile (length limits, bounds checks, typed errors, no panics; see
// FuzzPackets).
//
// # Framing
//
// A packet is a 3-byte little-endian payload length, a sequence id, and the payload. A logical
// packet whose payload is MaxPayload (2^24−1) bytes or longer is sent as MaxPayload-byte parts
// followed by a shorter, possibly empty, part; each part takes the next sequence id.
// PacketReader joins the parts and AppendPacket splits them. Sequence ids start at 0 with
// every command and at 0 with the server's greeting, and go up by one with every part in
// either direction; a proxy that injects or rewrites packets renumbers them.
//
// # Connection phase (server side)
//
//	greeting:  h := &Handshake{…, Salt: NewSalt()}; write AppendPacket(nil, 0, h.Append(nil))
//	first:     p, seq, _ := ReadPacket(conn, MaxHandshakePayload)   // unbuffered: TLS may follow
//	           if IsSSLRequest(p) { conn = tls.Server(conn, cfg); p, seq, _ = ReadPacket(conn, …) }
//	response:  resp, _ := DecodeHandshakeResponse(p)
//	auth:      r := NewPacketReader(bufio.NewReader(conn), MaxHandshakePayload)
//	           _, err := (&ServerAuth{Handshake: h, Resp: resp, Cred: …}).Run(r, conn, seq+1)
//	commands:  r.SetMaxPayload(maxAllowedPacket); caps := resp.Caps & h.Caps
//
// No buffered reader may exist before the TLS upgrade. MariaDB servers clear ClientLongPassword
// in Handshake.Caps to announce MariaDB extended capabilities (Handshake.ExtCaps, in the
// greeting's reserved bytes); a client that clears it in its response sends its own
// (HandshakeResponse.ExtCaps). Offer only what the proxy relays faithfully: extended metadata
// (one more field in column definitions: AppendColumnDef, ColumnDefType) is safe; progress
// reports, bulk execution and metadata caching change the response stream.
//
// # Connection phase (client side)
//
// Connect takes an established net.Conn and returns a ClientConn in the command phase, with
// the negotiated capabilities. For a backend, ask for the capabilities the client negotiated
// with baton (DEPRECATE_EOF, MULTI_STATEMENTS, FOUND_ROWS … must match on both sides: the
// bytes are relayed untouched) and pass the client's collation in Charset.
//
// # Responses
//
// Feed every payload of one command's response to a Tracker made for that command and the
// negotiated capabilities; it reports done on the payload that ends the response:
//
//	tr := NewTracker(cmd, caps)
//	for {
//		p, seq, err := backend.R.Next()
//		…forward p to the client (renumbered)…
//		done, err := tr.Feed(p)
//		if done { break }
//		if name, ok := tr.WantsLocalInfile(); ok { …relay the client's file packets, then the empty one… }
//	}
//	inTx := tr.Status()&StatusInTrans != 0
//
// Traps the Tracker handles: a text row may begin with 0xfe (a value of 16 MiB or more), so a
// terminator is a 0xfe packet shorter than MaxPayload; with DEPRECATE_EOF there is no EOF after
// column definitions and the rows end with an OK whose header is 0xfe; an ERR can end a result
// set in the middle of its rows; MORE_RESULTS_EXISTS chains result sets (multi-statements,
// CALL); a COM_STMT_EXECUTE that opens a cursor ends after the column definitions with a
// terminator carrying StatusCursorExists, and the rows come with COM_STMT_FETCH, ending with
// StatusLastRowSent once exhausted. COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA and COM_QUIT have
// no response (NoResponse).
//
// # Session state
//
// With CLIENT_SESSION_TRACK, an OK carrying StatusSessionStateChanged lists changed session
// state: TrackedSystemVariables, TrackedSchema, TrackedGTIDs read it. MySQL reports GTIDs as
// their own entry type (session_track_gtids); MariaDB only through the tracked system variable
// last_gtid (session_track_system_variables must include it), which TrackedGTIDs falls back to.
package mywire
