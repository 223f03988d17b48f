package scpi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"go.bug.st/serial"
)

// DefaultPort is the raw SCPI socket port of most instruments (Rigol's
// DP800 listens on 5555 instead).
const DefaultPort = 5025

// Stream is a connection to one instrument: a byte stream whose reads and
// writes end at a deadline (os.ErrDeadlineExceeded), as a net.Conn's do.
type Stream interface {
	io.ReadWriteCloser
	SetDeadline(t time.Time) error
}

// Transport connects to an instrument; the Client dials it again after the
// connection is lost.
type Transport interface {
	Dial(ctx context.Context) (Stream, error)
	String() string // for errors and the transcript, e.g. "tcp://10.0.0.5:5025"
}

// TCP is a raw SCPI socket (no VXI-11, no HiSLIP: one newline-terminated
// message per line, as instruments serve on port 5025).
type TCP struct {
	Addr string // host:port
}

// Dial connects.
func (t TCP) Dial(ctx context.Context) (Stream, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

func (t TCP) String() string { return "tcp://" + t.Addr }

// Serial is an RS-232 line (a USB adapter, or a pseudo-terminal), 8N1.
type Serial struct {
	Path string
	Baud int // 9600 when 0
}

// Dial opens the port.
func (s Serial) Dial(ctx context.Context) (Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	baud := s.Baud
	if baud == 0 {
		baud = 9600
	}
	p, err := serial.Open(s.Path, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		return nil, err
	}
	// Whatever an earlier session left unread must not answer our first
	// query.
	_ = p.ResetInputBuffer()
	return &serialStream{p: p}, nil
}

func (s Serial) String() string {
	baud := s.Baud
	if baud == 0 {
		baud = 9600
	}
	return fmt.Sprintf("serial://%s?baud=%d", s.Path, baud)
}

// serialStream gives a serial port deadlines: a read waits in slices of at
// most pollSlice, so a deadline moved by another goroutine (a cancelled
// context) takes effect within one slice.
type serialStream struct {
	p        serial.Port
	mu       sync.Mutex
	deadline time.Time
}

const pollSlice = 50 * time.Millisecond

func (s *serialStream) SetDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	return nil
}

func (s *serialStream) Read(b []byte) (int, error) {
	for {
		s.mu.Lock()
		dl := s.deadline
		s.mu.Unlock()
		wait := pollSlice
		if !dl.IsZero() {
			left := time.Until(dl)
			if left <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			wait = min(wait, left)
		}
		if err := s.p.SetReadTimeout(wait); err != nil {
			return 0, err
		}
		n, err := s.p.Read(b)
		if n > 0 || err != nil {
			return n, err
		}
	}
}

func (s *serialStream) Write(b []byte) (int, error) { return s.p.Write(b) }
func (s *serialStream) Close() error                { return s.p.Close() }

// StreamFunc is a Transport made of a dial function, for tests and for
// streams the package does not know (e.g. one side of net.Pipe).
type StreamFunc struct {
	Name string
	Func func(ctx context.Context) (Stream, error)
}

// Dial calls Func.
func (f StreamFunc) Dial(ctx context.Context) (Stream, error) { return f.Func(ctx) }
func (f StreamFunc) String() string                           { return f.Name }

// isTimeout reports whether err is a deadline that passed.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
