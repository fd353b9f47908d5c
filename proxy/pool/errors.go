package pool

import (
	"errors"
	"fmt"
	"time"
)

// ErrTimeout is what every acquire timeout matches (errors.Is); the error itself is a
// *TimeoutError that says which limit was full.
var ErrTimeout = errors.New("pool: timed out waiting for a free backend connection")

// ErrClosed is returned by Acquire after CloseAll.
var ErrClosed = errors.New("pool: closed")

// TimeoutError is returned when no connection became free within pool.acquire_timeout. It names
// the limit that held the session back and the setting that raises it; nothing secret.
type TimeoutError struct {
	Waited time.Duration
	Key    Key
	// Setting is the full limit: "pool.size" (the key's connections, reserve included) or
	// "pool.max_per_node" (every key of the node together).
	Setting string
	Open    int // connections the full limit counted: the key's, or the node's
	Size    int // pool.size, or the user's pool_size (Setting users[].pool_size)
	Reserve int // pool.reserve_size the session could use (0 before pool.reserve_timeout)
	Max     int // pool.max_per_node
}

func (e *TimeoutError) Error() string {
	who := ""
	if e.Key.User != "" || e.Key.Database != "" {
		who = fmt.Sprintf(" of user %q, database %q", e.Key.User, e.Key.Database)
	}
	if e.Setting == "pool.max_per_node" {
		return fmt.Sprintf("pool: timed out after %v waiting for a free backend connection: all %d connections "+
			"to the node (pool.max_per_node, all users and databases together) are in use; raise pool.max_per_node "+
			"(and the server's max_connections) or pool.acquire_timeout, or shorten transactions", e.Waited.Round(time.Millisecond), e.Open)
	}
	name := "pool.size"
	if e.Setting == "users[].pool_size" {
		name = "the user's pool_size"
	}
	limit := fmt.Sprintf("%s %d", name, e.Size)
	raise := "pool.size"
	if e.Setting == "users[].pool_size" {
		raise = "users[].pool_size"
	}
	if e.Reserve > 0 {
		limit += fmt.Sprintf(" + pool.reserve_size %d", e.Reserve)
	}
	return fmt.Sprintf("pool: timed out after %v waiting for a free backend connection: all %d connections%s "+
		"to the node are in use (%s); raise %s or pool.acquire_timeout, or shorten transactions",
		e.Waited.Round(time.Millisecond), e.Open, who, limit, raise)
}

// Is makes errors.Is(err, ErrTimeout) true.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }
