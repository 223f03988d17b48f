// Package scpi is a small SCPI client for bench instruments over a raw
// socket (TCP port 5025) or a serial line, written for the failures lab
// automation meets: every call has a deadline taken from its context (an
// instrument does not answer a query it does not know, so a query that
// gets no answer times out and the error names it); answers are read
// framed (one line, or an IEEE 488.2 definite-length block) and bounded in
// size; the error queue (SYST:ERR?) is drained at checkpoints the caller
// chooses, and every entry is reported with the commands sent since the
// last checkpoint; one connection per instrument, serialized by a mutex;
// a connection that failed or timed out is dropped and dialled again on
// the next call (a late answer would otherwise answer the next query); and
// a timestamped transcript of everything sent and received.
package scpi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Options tune a Client; the zero value gives the defaults.
type Options struct {
	// Timeout bounds each call when the context has no earlier deadline
	// (default 2 s: LAN instruments answer in 8 to 80 ms).
	Timeout time.Duration
	// MinInterval is the least time between the end of one call and the
	// start of the next (Siglent's SPD3303X needs about 10 ms).
	MinInterval time.Duration
	// MaxAnswer bounds one answer line (default 64 KiB); MaxBlock one
	// definite-length block (default 16 MiB).
	MaxAnswer, MaxBlock int
	// Redials is how many times a lost connection is dialled again, with
	// a doubling pause from 50 ms, before a call fails (default 3).
	Redials int
	// SyncQuery is the query Sync sends and SyncAnswer what it must
	// answer (default "*OPC?" and "1"); an instrument without *OPC? gets
	// another harmless query, and SyncAnswer "" accepts any answer.
	SyncQuery, SyncAnswer string
	// Transcript, when not nil, gets every command, answer and event.
	Transcript *Transcript
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.MaxAnswer <= 0 {
		o.MaxAnswer = 64 << 10
	}
	if o.MaxBlock <= 0 {
		o.MaxBlock = 16 << 20
	}
	if o.Redials == 0 {
		o.Redials = 3
	}
	if o.SyncQuery == "" {
		o.SyncQuery, o.SyncAnswer = "*OPC?", "1"
	}
	return o
}

// ErrTimeout marks a call that got no (complete) answer before its
// deadline.
var ErrTimeout = errors.New("no answer in time")

// ErrConnectionLost marks a call whose connection failed (closed, reset)
// in the middle; the next call dials again.
var ErrConnectionLost = errors.New("connection lost")

// CommandError is a failed call: the instrument, the command and why.
type CommandError struct {
	Instrument string
	Command    string
	Err        error
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("%s: %q: %v", e.Instrument, e.Command, e.Err)
}

func (e *CommandError) Unwrap() error { return e.Err }

// QueueError is a checkpoint that found entries in the instrument's error
// queue: each entry, and the commands sent since the previous checkpoint
// (the last 16), which one of them caused.
type QueueError struct {
	Instrument string
	Where      string // "after configuration", "before output on", ...
	Entries    []Error
	Since      []string
}

func (e *QueueError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s: the instrument reported", e.Instrument, e.Where)
	for i, en := range e.Entries {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %d %q", en.Code, en.Message)
	}
	if len(e.Since) > 0 {
		fmt.Fprintf(&b, " (commands since the last check: %s)", strings.Join(e.Since, "; "))
	}
	return b.String()
}

// Has reports whether the queue held the error code.
func (e *QueueError) Has(code int) bool {
	for _, en := range e.Entries {
		if en.Code == code {
			return true
		}
	}
	return false
}

// Client is one connection to one instrument. Its methods may be called
// from several goroutines; calls are serialized.
type Client struct {
	tr  Transport
	opt Options

	mu         sync.Mutex
	s          Stream
	r          *bufio.Reader
	lastIO     time.Time
	since      []string
	dialled    bool
	exchanged  bool // a call succeeded on the current stream
	reconnects int
	closed     bool
}

// New returns a client that dials tr at its first call.
func New(tr Transport, opt Options) *Client {
	return &Client{tr: tr, opt: opt.withDefaults()}
}

// Dial returns a client connected to tr.
func Dial(ctx context.Context, tr Transport, opt Options) (*Client, error) {
	c := New(tr, opt)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// String names the instrument's address.
func (c *Client) String() string { return c.tr.String() }

// Adjust sets the pacing and the sync query once the instrument is known
// (its dialect found from *IDN?); empty values keep the current ones.
func (c *Client) Adjust(minInterval time.Duration, syncQuery, syncAnswer string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opt.MinInterval = minInterval
	if syncQuery != "" {
		c.opt.SyncQuery, c.opt.SyncAnswer = syncQuery, syncAnswer
	}
}

// Reconnects is how many times the client dialled again after a lost or
// timed-out connection.
func (c *Client) Reconnects() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reconnects
}

// Close closes the connection; later calls fail.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return c.drop("closed")
}

func (c *Client) log(mark byte, text string) { c.opt.Transcript.Log(c.tr.String(), mark, text) }

// drop closes the stream; the next call dials again.
func (c *Client) drop(why string) error {
	if c.s == nil {
		return nil
	}
	err := c.s.Close()
	c.s, c.r = nil, nil
	c.log('~', "disconnected: "+why)
	return err
}

// connect dials, trying again Redials times. Called with mu held.
func (c *Client) connect(ctx context.Context) error {
	if c.closed {
		return fmt.Errorf("%s: client closed", c.tr)
	}
	if c.s != nil {
		return nil
	}
	var err error
	pause := 50 * time.Millisecond
	for attempt := 0; attempt <= max(c.opt.Redials, 0); attempt++ {
		if attempt > 0 {
			if werr := sleep(ctx, pause); werr != nil {
				break
			}
			pause *= 2
		}
		dctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
		var s Stream
		s, err = c.tr.Dial(dctx)
		cancel()
		if err == nil {
			c.s, c.r, c.exchanged = s, bufio.NewReaderSize(s, 4096), false
			if c.dialled {
				c.reconnects++
				c.log('~', "reconnected")
			} else {
				c.log('~', "connected")
			}
			c.dialled = true
			return nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	if cerr := ctx.Err(); cerr != nil && err == nil {
		err = cerr
	}
	c.log('!', "connect: "+err.Error())
	return fmt.Errorf("%s: connect: %w", c.tr, err)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// call sends cmd and, when read is not nil, reads its answer, within the
// call's deadline. Any failure after the command may have reached the
// instrument drops the connection: the next call starts clean. A
// connection dialled for this call that the instrument closes at once
// (one client at a time: it has not yet seen the previous one go) is
// dialled once more and the command sent again: the instrument never saw
// it.
func (c *Client) call(ctx context.Context, cmd string, read func(r *bufio.Reader) error) error {
	if strings.ContainsAny(cmd, "\r\n") {
		return &CommandError{c.tr.String(), cmd, errors.New("a command must not contain a line break")}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.since = append(c.since, cmd)
	if len(c.since) > 16 {
		c.since = c.since[len(c.since)-16:]
	}
	for try := 0; ; try++ {
		fresh := c.s == nil || !c.exchanged
		err := c.attempt(ctx, cmd, read)
		if err == nil {
			c.exchanged = true
		}
		if err == nil || try > 0 || !fresh || !errors.Is(err, ErrConnectionLost) || ctx.Err() != nil {
			return err
		}
		c.log('~', "the new connection was closed at once: dialling again")
		if sleep(ctx, 100*time.Millisecond) != nil {
			return err
		}
	}
}

func (c *Client) attempt(ctx context.Context, cmd string, read func(r *bufio.Reader) error) error {
	if err := ctx.Err(); err != nil {
		return &CommandError{c.tr.String(), cmd, err}
	}
	if err := c.connect(ctx); err != nil {
		return &CommandError{c.tr.String(), cmd, err}
	}
	if err := sleep(ctx, c.opt.MinInterval-time.Since(c.lastIO)); err != nil {
		return &CommandError{c.tr.String(), cmd, err}
	}
	budget := c.opt.Timeout
	deadline := time.Now().Add(budget)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, budget = d, time.Until(d)
	}
	s := c.s
	_ = s.SetDeadline(deadline)
	// A cancelled context ends a blocked read at once.
	stop := context.AfterFunc(ctx, func() { _ = s.SetDeadline(time.Unix(1, 0)) })
	c.log('>', cmd)
	_, err := s.Write([]byte(cmd + "\n"))
	if err == nil && read != nil {
		err = read(c.r)
	}
	stop()
	c.lastIO = time.Now()
	if err == nil {
		_ = s.SetDeadline(time.Time{})
		return nil
	}
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
		c.log('!', fmt.Sprintf("%q: %v", cmd, err))
		_ = c.drop("call cancelled")
	case isTimeout(err):
		if read != nil {
			err = fmt.Errorf("%w: nothing within %v (an instrument does not answer a query it does not know)", ErrTimeout, budget.Round(time.Millisecond))
		} else {
			err = fmt.Errorf("%w: could not send within %v", ErrTimeout, budget.Round(time.Millisecond))
		}
		c.log('!', fmt.Sprintf("%q: %v", cmd, err))
		_ = c.drop("timeout")
	case errors.Is(err, ErrTooLong) || errors.Is(err, errBadFrame):
		c.log('!', fmt.Sprintf("%q: %v", cmd, err))
		_ = c.drop("bad answer")
	default:
		err = fmt.Errorf("%w: %v", ErrConnectionLost, err)
		c.log('!', fmt.Sprintf("%q: %v", cmd, err))
		_ = c.drop("lost")
	}
	return &CommandError{c.tr.String(), cmd, err}
}

var errBadFrame = errors.New("bad block framing")

// Write sends a command that has no answer.
func (c *Client) Write(ctx context.Context, cmd string) error {
	return c.call(ctx, cmd, nil)
}

// Query sends a query and returns its answer line, without the terminator.
func (c *Client) Query(ctx context.Context, q string) (string, error) {
	var ans string
	err := c.call(ctx, q, func(r *bufio.Reader) error {
		var err error
		ans, err = readLine(r, c.opt.MaxAnswer)
		if err == nil {
			c.log('<', ans)
		}
		return err
	})
	return ans, err
}

// QueryFloat sends a query and parses its answer as one number.
func (c *Client) QueryFloat(ctx context.Context, q string) (float64, error) {
	ans, err := c.Query(ctx, q)
	if err != nil {
		return 0, err
	}
	v, err := ParseFloat(ans)
	if err != nil {
		return 0, &CommandError{c.tr.String(), q, err}
	}
	return v, nil
}

// QueryBool sends a query and parses its answer as a boolean.
func (c *Client) QueryBool(ctx context.Context, q string) (bool, error) {
	ans, err := c.Query(ctx, q)
	if err != nil {
		return false, err
	}
	v, err := ParseBool(ans)
	if err != nil {
		return false, &CommandError{c.tr.String(), q, err}
	}
	return v, nil
}

// QueryBlock sends a query whose answer is a definite-length block and
// returns the block's bytes.
func (c *Client) QueryBlock(ctx context.Context, q string) ([]byte, error) {
	var data []byte
	err := c.call(ctx, q, func(r *bufio.Reader) error {
		var err error
		data, err = ReadBlock(r, c.opt.MaxBlock)
		if errors.Is(err, ErrBlockFormat) {
			return fmt.Errorf("%w: %v", errBadFrame, err)
		}
		if err != nil {
			return err
		}
		rest, err := readLine(r, 64)
		if errors.Is(err, ErrTooLong) {
			return fmt.Errorf("%w: more than 64 bytes after the block's %d", errBadFrame, len(data))
		}
		if err != nil {
			return err
		}
		if rest != "" {
			return fmt.Errorf("%w: %q after the block's %d bytes", errBadFrame, rest, len(data))
		}
		c.log('<', fmt.Sprintf("#block of %d bytes", len(data)))
		return nil
	})
	return data, err
}

// Sync waits until the instrument has carried out every command sent so
// far (*OPC? by default).
func (c *Client) Sync(ctx context.Context) error {
	ans, err := c.Query(ctx, c.opt.SyncQuery)
	if err != nil {
		return err
	}
	if c.opt.SyncAnswer != "" && strings.TrimSpace(strings.TrimPrefix(ans, "+")) != c.opt.SyncAnswer {
		return &CommandError{c.tr.String(), c.opt.SyncQuery, fmt.Errorf("answer %q, want %q", clip(ans), c.opt.SyncAnswer)}
	}
	return nil
}

// maxQueue bounds a drain: real queues hold 20 to 32 entries.
const maxQueue = 64

// Errors drains the error queue (SYST:ERR? until 0) and returns its
// entries, oldest first.
func (c *Client) Errors(ctx context.Context) ([]Error, error) {
	var out []Error
	for range maxQueue {
		ans, err := c.Query(ctx, "SYST:ERR?")
		if err != nil {
			return out, err
		}
		e, err := ParseError(ans)
		if err != nil {
			return out, &CommandError{c.tr.String(), "SYST:ERR?", err}
		}
		if e.Code == 0 {
			return out, nil
		}
		out = append(out, e)
	}
	return out, &CommandError{c.tr.String(), "SYST:ERR?", fmt.Errorf("the error queue did not empty after %d entries", maxQueue)}
}

// Checkpoint drains the error queue; entries found are a *QueueError that
// says where (e.g. "after configuration") and what was sent since the last
// checkpoint.
func (c *Client) Checkpoint(ctx context.Context, where string) error {
	c.mu.Lock()
	since := c.since
	c.since = nil
	c.mu.Unlock()
	entries, err := c.Errors(ctx)
	c.mu.Lock()
	c.since = nil
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	c.log('!', fmt.Sprintf("%s: %d error(s) in the queue", where, len(entries)))
	return &QueueError{Instrument: c.tr.String(), Where: where, Entries: entries, Since: since}
}
