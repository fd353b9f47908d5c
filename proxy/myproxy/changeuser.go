package myproxy

import (
	"bytes"
	"errors"

	"github.com/baton-proxy/baton/proxy/admit"
	"github.com/baton-proxy/baton/proxy/mywire"
	"github.com/baton-proxy/baton/proxy/pool"
)

// decodeChangeUser parses a COM_CHANGE_USER payload into the fields of a handshake response.
func decodeChangeUser(p []byte, caps uint32) (*mywire.HandshakeResponse, error) {
	bad := errors.New("malformed COM_CHANGE_USER")
	b := p[1:]
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return nil, bad
	}
	r := &mywire.HandshakeResponse{Caps: caps, User: string(b[:i])}
	b = b[i+1:]
	if caps&mywire.ClientSecureConnection != 0 {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return nil, bad
		}
		r.AuthResponse = append([]byte(nil), b[1:1+int(b[0])]...)
		b = b[1+int(b[0]):]
	} else {
		if i = bytes.IndexByte(b, 0); i < 0 {
			return nil, bad
		}
		r.AuthResponse, b = append([]byte(nil), b[:i]...), b[i+1:]
	}
	if i = bytes.IndexByte(b, 0); i < 0 {
		return nil, bad
	}
	r.Database, b = string(b[:i]), b[i+1:]
	if len(b) >= 2 {
		r.Charset, b = b[0], b[2:]
	}
	if caps&mywire.ClientPluginAuth != 0 && len(b) > 0 {
		if i = bytes.IndexByte(b, 0); i >= 0 {
			r.AuthPlugin = string(b[:i])
		} else {
			r.AuthPlugin = string(b)
		}
	}
	return r, nil
}

// changeUser handles COM_CHANGE_USER: the new user authenticates against baton's users with the
// connection's original scramble; on success the session starts afresh as that user (its
// backend connections go back to the pool, which resets them). A failed change closes the
// connection, as MySQL does.
func (s *session) changeUser(p []byte) bool {
	resp, err := decodeChangeUser(p, s.caps)
	if err != nil {
		s.writeErr(s.rseq, 1835, "HY000", "Malformed communication packet")
		s.w.Flush()
		return false
	}
	resp.Caps = s.caps
	if !s.tls {
		resp.Caps &^= mywire.ClientSSL
	}
	host := ""
	if a := s.client.RemoteAddr(); a != nil {
		host = a.String()
	}
	cred, fromDB, err := s.srv.clientCred(resp.User)
	if err != nil {
		s.writeErr(s.rseq, 1105, "HY000", errLookupText)
		s.w.Flush()
		return false
	}
	auth := &mywire.ServerAuth{Handshake: s.hs, Resp: resp, Cred: cred, TLS: s.tls,
		RSAKey: s.srv.rsaKey, ClientHost: host, Cache: s.srv.sha2}
	release := s.srv.admitter(auth, resp.User, fromDB) // the new user's session limit (admit.go)
	s.w.Flush()
	// An ERR packet ends a failed login: the backoff counts it before the client reads it.
	fw := &admit.FailureWriter{W: s.client, IsErr: mywire.IsERRPacket, Failed: func() { s.srv.loginFailed(s.client.RemoteAddr()) }}
	if admitFn := auth.Admit; admitFn != nil {
		auth.Admit = func() *mywire.ERR { fw.Stop(); return admitFn() } // the password was right
	}
	if _, err := auth.Run(s.r, fw, s.rseq); err != nil { // several round trips: unbuffered
		release()
		s.srv.metrics.authFail.Add(1)
		if errors.Is(err, mywire.ErrAccessDenied) && !fw.Counted() {
			s.srv.loginFailed(s.client.RemoteAddr())
		}
		return false
	}
	if s.release != nil {
		s.release() // the previous user's place
	}
	s.release = release
	s.resetSession()
	u := s.srv.sessionUser(resp.User, fromDB, auth)
	s.srv.mu.Lock() // kill reads the user of other sessions under it
	s.user = u
	s.srv.mu.Unlock()
	s.key = pool.Key{User: u.BackendUser, Database: resp.Database, Variant: s.key.Variant}
	return true
}
