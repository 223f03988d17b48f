package wire

import (
	"errors"
	"io"
)

// Decoder splits a byte stream into frames: it collects bytes up to a 0x00,
// undoes COBS and checks the length and the CRC. It holds one frame's
// bytes at most (MaxWire): a longer run without a delimiter is reported
// once, as KindLong, and skipped up to the next 0x00. An empty frame (two
// delimiters in a row) is ignored. The zero Decoder is ready.
type Decoder struct {
	buf  [MaxWire]byte
	n    int
	skip bool // past MaxWire bytes: dropping up to the next delimiter
}

// Feed consumes bytes of p until it completes a frame or finds a bad one,
// and returns how many bytes it consumed. frame (the decoded frame, header
// to CRC, valid until the next call) or err (an *Error) is set when one
// ended; both are nil when p ran out first. Call it again with p[n:].
func (d *Decoder) Feed(p []byte) (n int, frame []byte, err error) {
	for i, b := range p {
		if b != 0 {
			if d.skip {
				continue
			}
			if d.n == MaxWire-1 {
				// A frame's encoding is at most MaxWire-1 bytes before its
				// delimiter: this one is too long, or a delimiter was lost.
				d.skip, d.n = true, 0
				return i + 1, nil, errorf(KindLong, "more than %d bytes without a 0x00 delimiter", MaxWire-1)
			}
			d.buf[d.n] = b
			d.n++
			continue
		}
		// The delimiter.
		enc := d.buf[:d.n]
		d.n = 0
		if d.skip {
			d.skip = false
			continue
		}
		if len(enc) == 0 {
			continue
		}
		f, err := DecodeCOBS(enc[:0], enc)
		if err == nil {
			err = CheckFrame(f)
		}
		if err != nil {
			return i + 1, nil, err
		}
		return i + 1, f, nil
	}
	return len(p), nil, nil
}

// Reset drops any partial frame.
func (d *Decoder) Reset() { d.n, d.skip = 0, false }

// Pending is the number of bytes of an unfinished frame held.
func (d *Decoder) Pending() int { return d.n }

// Reader reads frames from an io.Reader with a Decoder.
type Reader struct {
	r    io.Reader
	d    Decoder
	in   [512]byte
	p, q int // unconsumed input is in[p:q]
	err  error
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Next returns the next decoded frame (valid until the next call). A bad
// frame gives an *Error and the following call goes on with the next frame;
// any other error comes from the underlying reader (io.EOF at its end; an
// unfinished frame at EOF is dropped). A Read that returns no bytes and no
// error is retried.
func (r *Reader) Next() ([]byte, error) {
	for {
		if r.p < r.q {
			n, f, err := r.d.Feed(r.in[r.p:r.q])
			r.p += n
			if f != nil || err != nil {
				return f, err
			}
			continue
		}
		if r.err != nil {
			return nil, r.err
		}
		n, err := r.r.Read(r.in[:])
		if n < 0 || n > len(r.in) {
			n, err = 0, errors.New("wire: the underlying reader returned an invalid count")
		}
		r.p, r.q = 0, n
		if err != nil {
			r.err = err
		}
	}
}
