// Package netio gives the relay's sockets reads and writes that cost only the system call.
//
// A read or write on a net.Conn enters the Go scheduler's syscall bookkeeping (entersyscall /
// exitsyscall), which wakes the runtime's sysmon thread whenever the process was idle and lets
// sysmon hand the P to another thread when the call takes longer than ~20 µs. For a proxy that
// makes four short socket calls per query that bookkeeping cost more than the calls: profiled
// on a 2-core machine with pgbench -S through baton, sysmon and the wake-ups it caused took
// about a fifth of baton's CPU. A non-blocking socket call never blocks, so it can be made as a
// raw system call through syscall.RawConn; the netpoller still does the waiting (EAGAIN parks
// the goroutine exactly as net.Conn does) and deadlines and Close work as before.
package netio
