package linktest

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/term"

	"github.com/batteryless/harness/harness/testenv"
)

// errNoPty: the machine gives no pseudo-terminal (a container without
// /dev/pts): a test skips, it does not fail.
var errNoPty = errors.New("no pseudo-terminals here")

// Port is a pseudo-terminal pair with a board on its master side: a link
// opens Path as a serial port.
type Port struct {
	Path          string // the slave's path, or the symlink to it
	link          string
	master, slave *os.File
	done          chan struct{}
	once          sync.Once
}

// Attach opens a pseudo-terminal pair in raw mode and serves b on its
// master side. If at is not empty, Path is a symlink at that path to the
// slave (a port that can vanish and come back at the same path: a USB
// adapter unplugged and plugged in again).
func Attach(b *Board, at string) (*Port, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("linktest: %w: %v", errNoPty, err)
	}
	if err := makeRaw(s); err != nil {
		m.Close()
		s.Close()
		return nil, err
	}
	p := &Port{Path: s.Name(), master: m, slave: s, done: make(chan struct{})}
	if at != "" {
		if err := os.Symlink(s.Name(), at); err != nil {
			m.Close()
			s.Close()
			return nil, fmt.Errorf("linktest: %w", err)
		}
		p.Path, p.link = at, at
	}
	// Plugged in before Attach returns, so that no event the board sends
	// after it is lost while the goroutine below starts.
	b.plug(m)
	go func() {
		defer close(p.done)
		b.Serve(m)
	}()
	return p, nil
}

// AttachT is Attach for a test: without pseudo-terminals the test skips
// (fails under HARNESS_STRICT=1), another error fails it, and the port
// closes when the test ends (Close may also be called before).
func AttachT(t testing.TB, b *Board, at string) *Port {
	t.Helper()
	p, err := Attach(b, at)
	switch {
	case errors.Is(err, errNoPty):
		testenv.Missing(t, err.Error(), "")
	case err != nil:
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// LineNoise writes bytes on the line towards the board, as noise on the
// host's TX line would.
func (p *Port) LineNoise(garbage []byte) error {
	_, err := p.slave.Write(garbage)
	return err
}

// Close unplugs the port: both sides close and the symlink, if any, goes;
// it waits until the board no longer reads it.
func (p *Port) Close() error {
	p.once.Do(func() {
		// The master is not pollable: Close does not end a Read in
		// progress, it only makes the file close when that Read returns.
		// A byte through the slave ends it (0x00: an empty frame for the
		// board); then the slave's reader, the link, sees the hang-up.
		p.master.Close()
		p.slave.Write([]byte{0})
		p.slave.Close()
		if p.link != "" {
			os.Remove(p.link)
		}
	})
	<-p.done
	return nil
}

// RawPty opens a pseudo-terminal pair with its slave in raw mode (no echo,
// no line editing, 8-bit clean), for a test that wires a line of its own (a
// relay, a board program). Both close when the test ends. Without
// pseudo-terminals the test skips (fails under HARNESS_STRICT=1).
func RawPty(t testing.TB) (master, slave *os.File) {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		testenv.Missing(t, fmt.Sprintf("linktest: %v: %v", errNoPty, err), "")
	}
	t.Cleanup(func() {
		m.Close()
		s.Close()
	})
	if err := makeRaw(s); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// makeRaw puts a terminal in raw mode.
func makeRaw(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("linktest: raw mode: %w", err)
	}
	var rawErr error
	if err := rc.Control(func(fd uintptr) { _, rawErr = term.MakeRaw(int(fd)) }); err != nil || rawErr != nil {
		return fmt.Errorf("linktest: raw mode: %w", errors.Join(err, rawErr))
	}
	return nil
}
