package mywire

import "errors"

// ErrNoTLS is wrapped by Connect's error when ClientConfig.TLS is set (and not TLSOptional)
// but the server does not offer TLS.
var ErrNoTLS = errors.New("the server does not offer TLS")
