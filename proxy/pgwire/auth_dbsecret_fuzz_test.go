package pgwire

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// fuzzRW reads the fuzzer's bytes and discards what is written.
type fuzzRW struct {
	io.Reader
	io.Writer
}

func fuzzAuthFrame(code uint32, data string) []byte {
	b := []byte{'R', 0, 0, 0, 0, byte(code >> 24), byte(code >> 16), byte(code >> 8), byte(code)}
	b = append(b, data...)
	n := len(b) - 1
	b[1], b[2], b[3], b[4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return b
}

// FuzzLogin feeds arbitrary server bytes to the backend login with a SCRAM key and an md5 key:
// it must never panic, never read past a message it accepted, and succeed only after
// AuthenticationOk (never after a SCRAM exchange whose server signature it did not check).
func FuzzLogin(f *testing.F) {
	f.Add(fuzzAuthFrame(pgproto3.AuthTypeOk, ""))
	f.Add(fuzzAuthFrame(pgproto3.AuthTypeSASL, "SCRAM-SHA-256\x00\x00"))
	f.Add(append(fuzzAuthFrame(pgproto3.AuthTypeSASL, "SCRAM-SHA-256\x00\x00"),
		fuzzAuthFrame(pgproto3.AuthTypeSASLContinue, "r=abc,s=MDEyMzQ1Njc4OWFiY2RlZg==,i=4096")...))
	f.Add(fuzzAuthFrame(pgproto3.AuthTypeMD5Password, "salt"))
	f.Add([]byte("E\x00\x00\x00\x1aSFATAL\x00C28P01\x00Mno\x00\x00"))
	f.Add([]byte{'R', 0xff, 0xff, 0xff, 0xff})
	salt := []byte("0123456789abcdef")
	ck := bytes.Repeat([]byte{7}, sha256.Size)
	keys := []*BackendKey{
		{ClientKey: ck, Salt: salt, Iters: 4096, ServerKey: bytes.Repeat([]byte{9}, sha256.Size)},
		{MD5: "md5" + "0123456789abcdef0123456789abcdef"},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, k := range keys {
			r := bytes.NewReader(data)
			err := Login(fuzzRW{r, io.Discard}, map[string]string{"user": "u"}, k)
			if err == nil {
				// Success needs AuthenticationOk as the last message read.
				read := data[:len(data)-r.Len()]
				if !bytes.HasSuffix(read, []byte{'R', 0, 0, 0, 8, 0, 0, 0, 0}) {
					t.Fatalf("Login succeeded without AuthenticationOk last: % x", read)
				}
			}
			var sle *ServerLoginError
			if err != nil && errors.As(err, &sle) && sle.Resp == nil {
				t.Fatal("ServerLoginError without a response")
			}
		}
	})
}

// FuzzAuthenticateKey runs the client side of the exchange with arbitrary client bytes against
// a SCRAM verifier and an md5 secret: never a panic, never a key without success, never
// success (the fuzzer does not know the password).
func FuzzAuthenticateKey(f *testing.F) {
	sasl := func(mech, data string) []byte {
		b, _ := (&pgproto3.SASLInitialResponse{AuthMechanism: mech, Data: []byte(data)}).Encode(nil)
		return b
	}
	resp := func(data string) []byte {
		b, _ := (&pgproto3.SASLResponse{Data: []byte(data)}).Encode(nil)
		return b
	}
	f.Add(sasl("SCRAM-SHA-256", "n,,n=,r=abcdefgh"))
	f.Add(append(sasl("SCRAM-SHA-256", "n,,n=,r=abcdefgh"), resp("c=biws,r=abcdefgh,p="+base64.StdEncoding.EncodeToString(make([]byte, 32)))...))
	f.Add(sasl("SCRAM-SHA-256", ""))
	f.Add(sasl("SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=,r=x"))
	pm, _ := (&pgproto3.PasswordMessage{Password: "md5" + "0123456789abcdef0123456789abcdef"}).Encode(nil)
	f.Add(pm)
	f.Add([]byte{'p', 0, 0, 0, 3})
	scramCred, err := CredentialFromRolPassword("u", testVerifier(f, "pw", "0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	md5Cred, _ := CredentialFromRolPassword("u", testMD5Secret("u", "pw"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, cred := range []*Credential{scramCred, md5Cred, nil} {
			be := pgproto3.NewBackend(bytes.NewReader(data), io.Discard)
			key, err := AuthenticateKey(be, "u", cred, nil)
			if err == nil {
				t.Fatalf("login succeeded with fuzzer bytes % x", data)
			}
			if key != nil {
				t.Fatal("a key from a failed login")
			}
			if !errors.Is(err, ErrAuthFailed) {
				t.Fatalf("error does not wrap ErrAuthFailed: %v", err)
			}
		}
	})
}

// FuzzRolPassword: arbitrary rolpassword values and SCRAM message triples never panic, and a
// recovered key always hashes to the StoredKey.
func FuzzRolPassword(f *testing.F) {
	f.Add("SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$AAAA:BBBB", "n,,n=,r=a", "r=ab,s=x,i=1", "c=biws,r=ab,p=AAAA")
	f.Add("md50123456789abcdef0123456789abcdef", "y,a=b,n=,r=a", "", ",p=")
	f.Add("", ",,", ",", "p=")
	stored, _ := authParseSCRAMVerifier(testVerifier(f, "pw", "0123456789abcdef"))
	f.Fuzz(func(t *testing.T, rolpassword, first, serverFirst, final string) {
		c, err := CredentialFromRolPassword("u", rolpassword)
		if c == nil || (err == nil) == (c.SCRAMVerifier == "" && c.MD5Secret == "") {
			t.Fatalf("credential %+v with error %v", c, err)
		}
		if k := scramClientKey(first, serverFirst, final, stored); k != nil {
			if h := sha256.Sum256(k.ClientKey); !bytes.Equal(h[:], stored.StoredKey) {
				t.Fatal("a key that does not hash to StoredKey")
			}
		}
	})
}
