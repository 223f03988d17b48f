package replay

import (
	"errors"
	"fmt"
	"io"

	"github.com/batteryless/harness/traces"
)

// source turns a trace into stretches of constant harvested power with
// absolute times, looping the trace end to end when asked.
type source struct {
	open   func() (traces.Reader, error)
	r      traces.Reader
	loop   bool
	offset float64 // added to the trace's times on the current pass

	power   float64 // harvested power of the current stretch
	until   float64 // when the current stretch ends (absolute)
	next    traces.Sample
	hasNext bool
	last    float64 // time of the current sample (trace time)
	ended   bool
	passes  int

	// A looped trace's samples are kept after the first pass (up to
	// maxCached), so later passes do not parse the file again.
	cache    []traces.Sample
	caching  bool
	cacheEnd float64 // when the last sample's hold ends (trace time)
	replay   int     // next cached sample to hand out, -1 when reading the file
}

// maxCached bounds the samples a looped trace keeps in memory (32 MiB).
const maxCached = 1 << 21

func newSource(open func() (traces.Reader, error), loop bool) (*source, error) {
	s := &source{open: open, loop: loop, caching: loop, replay: -1}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// start opens the trace for a pass and loads its first stretch.
func (s *source) start() error {
	if s.passes > 0 && s.caching && len(s.cache) > 0 {
		// Replay the cached samples.
		s.passes++
		s.replay = 0
		first := s.cache[0]
		s.offset -= first.T
		s.last, s.power = first.T, first.P
		return s.peek()
	}
	r, err := s.open()
	if err != nil {
		return err
	}
	s.r = r
	first, err := r.Next()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: the trace has no samples", r.Meta().Name)
	}
	if err != nil {
		return err
	}
	s.passes++
	s.offset -= first.T // a pass starts where the previous one ended
	s.last = first.T
	s.power = first.P
	if s.caching {
		s.cache = append(s.cache[:0], first)
	}
	return s.peek()
}

// peek reads the sample after the current one and sets the stretch's end.
func (s *source) peek() error {
	if s.replay >= 0 {
		s.replay++
		if s.replay < len(s.cache) {
			s.next, s.hasNext = s.cache[s.replay], true
			s.until = s.offset + s.next.T
		} else {
			s.hasNext = false
			s.until = s.offset + s.cacheEnd
		}
		return nil
	}
	n, err := s.r.Next()
	switch {
	case errors.Is(err, io.EOF):
		s.hasNext = false
		hold := s.r.Meta().LastHold(0)
		if hold <= 0 {
			hold = s.lastInterval()
		}
		s.until = s.offset + s.last + hold
		s.cacheEnd = s.last + hold
	case err != nil:
		return err
	default:
		s.next, s.hasNext = n, true
		s.until = s.offset + n.T
		if s.caching {
			if len(s.cache) < maxCached {
				s.cache = append(s.cache, n)
			} else {
				s.caching, s.cache = false, nil
			}
		}
	}
	return nil
}

func (s *source) lastInterval() float64 {
	if s.r.Meta().Period > 0 {
		return s.r.Meta().Period
	}
	return 0.001
}

// advance moves to the next stretch; at the end of the trace it loops or
// marks the source ended.
func (s *source) advance() error {
	if s.hasNext {
		s.last, s.power = s.next.T, s.next.P
		return s.peek()
	}
	if !s.loop {
		s.ended = true
		return nil
	}
	end := s.until
	if err := s.start(); err != nil {
		return err
	}
	// The new pass begins at the end of the old one.
	shift := end - (s.offset + s.last)
	s.offset += shift
	s.until += shift
	return nil
}
