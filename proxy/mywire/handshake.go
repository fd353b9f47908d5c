package mywire

import (
	"crypto/rand"
	"encoding/binary"
	"slices"
)

// SaltLen is the length of the authentication challenge (scramble) baton sends.
const SaltLen = 20

// Limits on a client's HandshakeResponse fields.
const (
	maxUserLen       = 512   // MySQL allows 32 characters; leave room for multibyte names
	maxAuthRespLen   = 4096  // RSA-4096 ciphertext is 512 bytes
	maxAttrsLen      = 65536 // the connection-attribute block (MySQL caps it at 64 KiB)
	maxHandshakeSize = 1 << 17
)

// MaxHandshakePayload bounds the packets of the connection phase (greeting, SSLRequest,
// HandshakeResponse, auth exchange): pass it to ReadPacket and NewPacketReader there.
const MaxHandshakePayload = maxHandshakeSize

// Handshake is the server's protocol-10 greeting (Initial Handshake Packet).
type Handshake struct {
	ConnID        uint32
	ServerVersion string
	Caps          uint32
	// ExtCaps are MariaDB's extended capabilities; they are sent (and read) only when Caps
	// lacks ClientLongPassword, which is how a MariaDB server announces them.
	ExtCaps    uint32
	Charset    byte
	Status     uint16
	AuthPlugin string
	Salt       []byte // SaltLen bytes (the 8-byte first part and the 12-byte second part)
}

// Append appends the greeting payload (not framed: frame it with AppendPacket, sequence id 0).
// A Salt shorter than SaltLen is padded with zero bytes, a longer one truncated.
func (h *Handshake) Append(dst []byte) []byte {
	var salt [SaltLen]byte
	copy(salt[:], h.Salt)
	dst = append(dst, 10)
	dst = append(dst, h.ServerVersion...)
	dst = append(dst, 0)
	dst = binary.LittleEndian.AppendUint32(dst, h.ConnID)
	dst = append(dst, salt[:8]...)
	dst = append(dst, 0)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(h.Caps))
	dst = append(dst, h.Charset)
	dst = binary.LittleEndian.AppendUint16(dst, h.Status)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(h.Caps>>16))
	if h.Caps&ClientPluginAuth != 0 {
		dst = append(dst, SaltLen+1)
	} else {
		dst = append(dst, 0)
	}
	dst = append(dst, make([]byte, 6)...) // reserved
	if h.Caps&ClientLongPassword == 0 {
		dst = binary.LittleEndian.AppendUint32(dst, h.ExtCaps) // MariaDB extended capabilities
	} else {
		dst = append(dst, 0, 0, 0, 0)
	}
	if h.Caps&ClientSecureConnection != 0 {
		dst = append(dst, salt[8:]...)
		dst = append(dst, 0)
	}
	if h.Caps&ClientPluginAuth != 0 {
		dst = append(dst, h.AuthPlugin...)
		dst = append(dst, 0)
	}
	return dst
}

// DecodeHandshake decodes a server greeting (the client side of the connection phase). The
// caller checks for an ERR packet (0xff) first: a server refusing a connection sends one
// instead of the greeting.
func DecodeHandshake(payload []byte) (*Handshake, error) {
	c := cursor{b: payload}
	if v := c.u8(); v != 10 {
		return nil, formatErrorf("unsupported handshake protocol version %d", v)
	}
	h := &Handshake{ServerVersion: string(c.nul()), ConnID: c.u32()}
	part1 := c.bytes(8)
	c.u8()
	h.Caps = uint32(c.u16())
	if c.bad {
		return nil, formatErrorf("truncated handshake")
	}
	h.Salt = slices.Clone(part1)
	if c.empty() {
		return h, nil
	}
	h.Charset = c.u8()
	h.Status = c.u16()
	h.Caps |= uint32(c.u16()) << 16
	authLen := int(c.u8())
	reserved := c.bytes(10)
	if c.bad {
		return nil, formatErrorf("truncated handshake")
	}
	if h.Caps&ClientLongPassword == 0 {
		h.ExtCaps = binary.LittleEndian.Uint32(reserved[6:])
	}
	if h.Caps&ClientSecureConnection != 0 {
		n := min(max(13, authLen-8), len(c.b))
		part2 := c.bytes(n)
		if len(part2) > 0 && part2[len(part2)-1] == 0 {
			part2 = part2[:len(part2)-1]
		}
		h.Salt = append(h.Salt, part2...)
	}
	if h.Caps&ClientPluginAuth != 0 {
		h.AuthPlugin = string(c.nulOrEnd())
	}
	return h, nil
}

// NewSalt returns SaltLen random bytes in the printable ASCII range without '$' (never NUL),
// like MySQL's scrambles.
func NewSalt() []byte {
	salt := make([]byte, SaltLen)
	var buf [64]byte
	for i := 0; i < len(salt); {
		rand.Read(buf[:])
		for _, b := range buf {
			if i == len(salt) {
				break
			}
			if b >= 2*94 {
				continue // rejection sampling keeps the distribution uniform
			}
			c := 0x21 + b%94
			if c == '$' {
				continue
			}
			salt[i] = c
			i++
		}
	}
	return salt
}

// HandshakeResponse is a client's HandshakeResponse41.
type HandshakeResponse struct {
	Caps         uint32
	ExtCaps      uint32 // MariaDB extended capabilities (when Caps lacks ClientLongPassword)
	MaxPacket    uint32
	Charset      byte
	User         string
	AuthResponse []byte
	Database     string
	AuthPlugin   string
	Attrs        map[string]string
}

// DecodeHandshakeResponse decodes a client's HandshakeResponse41 payload. Clients that do not
// speak protocol 4.1 are refused with a FormatError. The result does not alias payload.
func DecodeHandshakeResponse(payload []byte) (*HandshakeResponse, error) {
	c := cursor{b: payload}
	r := &HandshakeResponse{Caps: c.u32(), MaxPacket: c.u32(), Charset: c.u8()}
	reserved := c.bytes(23)
	if c.bad {
		return nil, formatErrorf("truncated handshake response")
	}
	if r.Caps&ClientLongPassword == 0 {
		r.ExtCaps = binary.LittleEndian.Uint32(reserved[19:])
	}
	if r.Caps&ClientProtocol41 == 0 {
		return nil, formatErrorf("client does not support protocol 4.1")
	}
	user := c.nul()
	if c.bad || len(user) > maxUserLen {
		return nil, formatErrorf("bad user name in handshake response")
	}
	r.User = string(user)
	var auth []byte
	switch {
	case r.Caps&ClientPluginAuthLenencClientData != 0:
		auth = c.lenencBytes()
	case r.Caps&ClientSecureConnection != 0:
		auth = c.bytes(int(c.u8()))
	default:
		auth = c.nul()
	}
	if c.bad || len(auth) > maxAuthRespLen {
		return nil, formatErrorf("bad auth response in handshake response")
	}
	r.AuthResponse = slices.Clone(auth)
	if r.Caps&ClientConnectWithDB != 0 && !c.empty() {
		r.Database = string(c.nulOrEnd())
	}
	if r.Caps&ClientPluginAuth != 0 && !c.empty() {
		r.AuthPlugin = string(c.nulOrEnd())
	}
	if r.Caps&ClientConnectAttrs != 0 && !c.empty() {
		n := c.lenencInt()
		if c.bad || n > maxAttrsLen || n > uint64(len(c.b)) {
			return nil, formatErrorf("bad connection attributes length")
		}
		attrs, err := decodeAttrs(c.bytes(int(n)))
		if err != nil {
			return nil, err
		}
		r.Attrs = attrs
	}
	return r, nil
}

func decodeAttrs(b []byte) (map[string]string, error) {
	c := cursor{b: b}
	var attrs map[string]string
	for !c.empty() {
		k := c.lenencBytes()
		v := c.lenencBytes()
		if c.bad {
			return nil, formatErrorf("malformed connection attributes")
		}
		if attrs == nil {
			attrs = make(map[string]string)
		}
		attrs[string(k)] = string(v)
	}
	return attrs, nil
}

// AppendHandshakeResponse appends the payload of a HandshakeResponse41 for r (the client side
// of the connection phase). Fields are written as r.Caps says.
func AppendHandshakeResponse(dst []byte, r *HandshakeResponse) []byte {
	dst = appendSSLRequest(dst, r.Caps, r.ExtCaps, r.MaxPacket, r.Charset)
	dst = append(dst, r.User...)
	dst = append(dst, 0)
	switch {
	case r.Caps&ClientPluginAuthLenencClientData != 0:
		dst = AppendLenEncInt(dst, uint64(len(r.AuthResponse)))
		dst = append(dst, r.AuthResponse...)
	case r.Caps&ClientSecureConnection != 0:
		auth := r.AuthResponse[:min(len(r.AuthResponse), 255)]
		dst = append(dst, byte(len(auth)))
		dst = append(dst, auth...)
	default:
		dst = append(dst, r.AuthResponse...)
		dst = append(dst, 0)
	}
	if r.Caps&ClientConnectWithDB != 0 {
		dst = append(dst, r.Database...)
		dst = append(dst, 0)
	}
	if r.Caps&ClientPluginAuth != 0 {
		dst = append(dst, r.AuthPlugin...)
		dst = append(dst, 0)
	}
	if r.Caps&ClientConnectAttrs != 0 {
		var attrs []byte
		keys := make([]string, 0, len(r.Attrs))
		for k := range r.Attrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			attrs = AppendLenEncString(attrs, k)
			attrs = AppendLenEncString(attrs, r.Attrs[k])
		}
		dst = AppendLenEncInt(dst, uint64(len(attrs)))
		dst = append(dst, attrs...)
	}
	return dst
}

// AppendSSLRequest appends the 32-byte SSLRequest payload (caps must include ClientSSL).
func AppendSSLRequest(dst []byte, caps, maxPacket uint32, charset byte) []byte {
	return appendSSLRequest(dst, caps, 0, maxPacket, charset)
}

// appendSSLRequest appends the fixed part of a HandshakeResponse41 (the whole SSLRequest):
// the MariaDB extended capabilities go in the last 4 of the 23 reserved bytes when caps lacks
// ClientLongPassword.
func appendSSLRequest(dst []byte, caps, extCaps, maxPacket uint32, charset byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, caps)
	dst = binary.LittleEndian.AppendUint32(dst, maxPacket)
	dst = append(dst, charset)
	dst = append(dst, make([]byte, 19)...)
	if caps&ClientLongPassword == 0 {
		return binary.LittleEndian.AppendUint32(dst, extCaps)
	}
	return append(dst, 0, 0, 0, 0)
}

// IsSSLRequest reports whether payload is the SSLRequest a client sends (instead of its
// HandshakeResponse) to start TLS: exactly 32 bytes with ClientSSL set.
func IsSSLRequest(payload []byte) bool {
	if len(payload) != 32 {
		return false
	}
	caps := binary.LittleEndian.Uint32(payload)
	return caps&ClientSSL != 0 && caps&ClientProtocol41 != 0
}
