// Package scpitest is a fake instrument for driver tests: it plays a
// transcript, a list of the commands a driver must send, in order, and the
// answers the instrument gives, as a programming guide's examples show a
// session.
//
// A transcript is text, one exchange per line:
//
//	# comment
//	> VOLT 3.3,(@1)          a command the driver must send, exactly
//	< +3.30000000E+00        the instrument's answer to the command before
//
// Playback checks every line the driver writes against the next "> " line;
// a line that differs, or one more than the transcript has, fails the
// playback (Err), and the fake then answers nothing more.
package scpitest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/batteryless/harness/boards/supply/scpi"
)

// Exchange is one command and its answer ("" when it has none).
type Exchange struct {
	Command string
	Answer  string
	HasAns  bool
	Line    int // in the transcript, for errors
}

// Parse reads a transcript.
func Parse(text string) ([]Exchange, error) {
	var out []Exchange
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "> "):
			out = append(out, Exchange{Command: line[2:], Line: i + 1})
		case strings.HasPrefix(line, "< "):
			if len(out) == 0 || out[len(out)-1].HasAns {
				return nil, fmt.Errorf("transcript line %d: an answer without a command before it", i+1)
			}
			out[len(out)-1].Answer, out[len(out)-1].HasAns = line[2:], true
		default:
			return nil, fmt.Errorf("transcript line %d: %q starts with neither \"> \" nor \"< \"", i+1, line)
		}
	}
	return out, nil
}

// ParseFile reads a transcript file.
func ParseFile(path string) ([]Exchange, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ex, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ex, nil
}

// Playback is a fake instrument playing a transcript; its Transport
// connects drivers to it.
type Playback struct {
	mu   sync.Mutex
	ex   []Exchange
	next int
	err  error
}

// NewPlayback plays ex.
func NewPlayback(ex []Exchange) *Playback { return &Playback{ex: ex} }

// Err is the first mismatch, nil when every command so far was expected.
func (p *Playback) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Done reports an error unless every exchange was played.
func (p *Playback) Done() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	if p.next < len(p.ex) {
		e := p.ex[p.next]
		return fmt.Errorf("transcript line %d: %q was never sent (%d of %d exchanges played)", e.Line, e.Command, p.next, len(p.ex))
	}
	return nil
}

// Transport connects to the fake; every dial gets a new connection that
// goes on with the same transcript.
func (p *Playback) Transport() scpi.Transport {
	// A name of its own: drivers share one connection per name.
	return scpi.StreamFunc{Name: fmt.Sprintf("playback-%p", p), Func: func(ctx context.Context) (scpi.Stream, error) {
		a, b := net.Pipe()
		go p.serve(b)
		return a, nil
	}}
}

func (p *Playback) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		p.mu.Lock()
		if p.err != nil {
			p.mu.Unlock()
			return
		}
		if p.next >= len(p.ex) {
			p.err = fmt.Errorf("unexpected command %q after the transcript's end", line)
			p.mu.Unlock()
			return
		}
		e := p.ex[p.next]
		if line != e.Command {
			p.err = fmt.Errorf("transcript line %d: sent %q, want %q", e.Line, line, e.Command)
			p.mu.Unlock()
			return
		}
		p.next++
		p.mu.Unlock()
		if e.HasAns {
			_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, e.Answer+"\n"); err != nil {
				return
			}
		}
	}
}
