package replay

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/batteryless/harness/traces"
)

// source turns a trace into stretches of constant harvested power with
// absolute times, looping the trace end to end when asked.
//
// The trace is parsed ahead in a goroutine (see prefetcher), in blocks of
// samples through a bounded channel: the file is read while the replay
// computes, and memory stays bounded however long the trace.
type source struct {
	open   func() (traces.Reader, error)
	pf     *prefetcher // the current pass's parser; nil when replaying the cache
	blk    *block      // the block being handed out
	pos    int         // next sample of blk
	loop   bool
	offset float64 // added to the trace's times on the current pass

	// The current stretch of constant power: its samples all have this
	// power (consecutive equal samples make one stretch, one exact step
	// of the power model), and it ends at until, where next begins.
	power   float64 // harvested power of the current stretch
	until   float64 // when the current stretch ends (absolute)
	next    traces.Sample
	hasNext bool
	last    float64 // time of the stretch's last sample (trace time)
	first   float64 // time of the pass's first sample (trace time)
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
		s.close()
		return nil, err
	}
	return s, nil
}

// close stops the parser, if one runs, and closes its trace.
func (s *source) close() {
	if s.pf != nil {
		s.pf.close()
		if s.blk != nil {
			s.pf.put(s.blk)
		}
		s.pf = nil
	}
	s.blk = nil
}

// start opens the trace for a pass and loads its first stretch.
func (s *source) start() error {
	if s.passes > 0 && s.caching && len(s.cache) > 0 {
		// Replay the cached samples.
		s.passes++
		s.replay = 0
		first := s.cache[0]
		s.offset -= first.T
		s.first, s.last, s.power = first.T, first.T, first.P
		return s.peek()
	}
	r, err := s.open()
	if err != nil {
		return err
	}
	s.close()
	s.pf = startPrefetch(r)
	first, err := s.read()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: the trace has no samples", s.blk.meta.Name)
	}
	if err != nil {
		return err
	}
	s.passes++
	s.offset -= first.T // a pass starts where the previous one ended
	s.first, s.last = first.T, first.T
	s.power = first.P
	if s.caching {
		s.cache = append(s.cache[:0], first)
	}
	return s.peek()
}

// read returns the pass's next sample, io.EOF after the last one (s.blk
// then holds the trace's final metadata), or the reader's error.
func (s *source) read() (traces.Sample, error) {
	for {
		if b := s.blk; b != nil {
			if s.pos < len(b.s) {
				s.pos++
				return b.s[s.pos-1], nil
			}
			if b.err != nil {
				return traces.Sample{}, b.err
			}
			s.pf.recycle(b)
		}
		s.blk, s.pos = s.pf.receive(), 0
	}
}

// peek reads the samples after the current one up to the next of another
// power, and sets the stretch's end.
func (s *source) peek() error {
	if s.replay >= 0 {
		for s.replay++; s.replay < len(s.cache) && s.cache[s.replay].P == s.power; s.replay++ {
			s.last = s.cache[s.replay].T
		}
		if s.replay < len(s.cache) {
			s.next, s.hasNext = s.cache[s.replay], true
			s.until = s.offset + s.next.T
		} else {
			s.hasNext = false
			s.until = s.offset + s.cacheEnd
		}
		return nil
	}
	var n traces.Sample
	var err error
	for {
		if b := s.blk; b != nil && s.pos < len(b.s) {
			n = b.s[s.pos] // the usual case, without a call
			s.pos++
		} else {
			n, err = s.read()
		}
		if err == nil && s.caching {
			if len(s.cache) < maxCached {
				s.cache = append(s.cache, n)
			} else {
				s.caching, s.cache = false, nil
			}
		}
		if err != nil || n.P != s.power {
			break
		}
		s.last = n.T // the same power: the stretch goes on
	}
	switch {
	case err == nil:
		s.next, s.hasNext = n, true
		s.until = s.offset + n.T
	case errors.Is(err, io.EOF):
		s.hasNext = false
		meta := s.blk.meta
		hold := meta.LastHold(0)
		if hold <= 0 {
			hold = lastInterval(meta)
		}
		s.until = s.offset + s.last + hold
		s.cacheEnd = s.last + hold
		s.close() // the pass is read: stop the parser and close the file
	default:
		return err
	}
	return nil
}

func lastInterval(m traces.Meta) float64 {
	if m.Period > 0 {
		return m.Period
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
	shift := end - (s.offset + s.first)
	s.offset += shift
	s.until += shift
	return nil
}

// Prefetch sizes: a block holds up to blockSamples samples, and at most
// prefetchBlocks blocks exist per pass (parsed ahead, being handed out, or
// free), so a pass holds at most prefetchBlocks x blockSamples samples
// (128 KiB) in memory whatever the trace's length. The first blocks are
// shorter, so that the replay starts as soon as the first samples are read.
const (
	blockSamples   = 1024
	firstBlock     = 64
	prefetchBlocks = 8
)

// blockPool keeps blocks from one replay to the next.
var blockPool = sync.Pool{New: func() any { return &block{s: make([]traces.Sample, 0, blockSamples)} }}

// block is a run of parsed samples; the last block of a pass also carries
// how the pass ended.
type block struct {
	s    []traces.Sample
	err  error       // after s: io.EOF at the end of the trace, or the reader's error
	meta traces.Meta // with err: the trace's metadata once read
}

// prefetcher parses a trace in a goroutine into blocks of samples, ahead of
// the replay, through a bounded channel.
type prefetcher struct {
	full   chan *block   // parsed blocks, in order
	free   chan *block   // blocks handed back for reuse
	stop   chan struct{} // closed to stop the parser early
	exited chan struct{} // closed when the parser has returned
}

func startPrefetch(r traces.Reader) *prefetcher {
	p := &prefetcher{
		full:   make(chan *block, prefetchBlocks),
		free:   make(chan *block, prefetchBlocks),
		stop:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go p.parse(r)
	return p
}

// parse reads r to its end (or until stopped) and closes it.
func (p *prefetcher) parse(r traces.Reader) {
	defer close(p.exited)
	if c, ok := r.(io.Closer); ok {
		defer c.Close()
	}
	made, size := 0, firstBlock
	for {
		var b *block
		select {
		case b = <-p.free:
		default:
			if made < prefetchBlocks {
				b = blockPool.Get().(*block)
				made++
			} else {
				select {
				case b = <-p.free:
				case <-p.stop:
					return
				}
			}
		}
		b.s = b.s[:0]
		for len(b.s) < size {
			smp, err := r.Next()
			if err != nil {
				b.err, b.meta = err, r.Meta()
				break
			}
			b.s = append(b.s, smp)
		}
		size = min(2*size, blockSamples)
		select {
		case p.full <- b:
		case <-p.stop:
			return
		}
		if b.err != nil {
			return
		}
	}
}

// receive returns the next parsed block.
func (p *prefetcher) receive() *block { return <-p.full }

// recycle hands a block back to the parser once its samples are used.
func (p *prefetcher) recycle(b *block) {
	select {
	case p.free <- b:
	default: // cannot happen: there are at most prefetchBlocks blocks
	}
}

// close stops the parser, waits until it has closed the trace, and keeps
// the blocks for the next replay.
func (p *prefetcher) close() {
	close(p.stop)
	<-p.exited
	for {
		select {
		case b := <-p.full:
			p.put(b)
		case b := <-p.free:
			p.put(b)
		default:
			return
		}
	}
}

func (p *prefetcher) put(b *block) {
	b.s, b.err, b.meta = b.s[:0], nil, traces.Meta{}
	blockPool.Put(b)
}
