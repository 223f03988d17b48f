package sim

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/kernels"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/harness/sched"
)

// TestCopyRegion: copying a region span by span (whole rows and pixels
// merged, 8-byte spans as words) moves exactly the region's bytes.
func TestCopyRegion(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 5000; trial++ {
		s := kernels.Shape{N: 1 + rng.IntN(2), H: 1 + rng.IntN(6), W: 1 + rng.IntN(6), C: 1 + rng.IntN(20)}
		if rng.IntN(3) == 0 {
			s.C = 8 * (1 + rng.IntN(3))
		}
		size := []int{1, 4}[rng.IntN(2)]
		pick := func(n int) (int, int) {
			a, b := rng.IntN(n+1), rng.IntN(n+1)
			if rng.IntN(3) == 0 {
				return 0, n
			}
			return min(a, b), max(a, b)
		}
		var r kernels.Region
		r.N0, r.N1 = pick(s.N)
		r.Y0, r.Y1 = pick(s.H)
		r.X0, r.X1 = pick(s.W)
		r.C0, r.C1 = pick(s.C)
		if rng.IntN(3) == 0 && s.C >= 8 {
			r.C0 = 8 * rng.IntN(s.C/8)
			r.C1 = r.C0 + 8
		}
		if r.Empty() {
			continue
		}
		n := s.N * s.H * s.W * s.C * size
		src, dst, want := make([]byte, n), make([]byte, n), make([]byte, n)
		for i := range src {
			src[i] = byte(rng.Uint32())
			dst[i] = byte(rng.Uint32())
		}
		copy(want, dst)
		for nn := r.N0; nn < r.N1; nn++ {
			for y := r.Y0; y < r.Y1; y++ {
				for x := r.X0; x < r.X1; x++ {
					for c := r.C0; c < r.C1; c++ {
						i := (((nn*s.H+y)*s.W+x)*s.C + c) * size
						copy(want[i:i+size], src[i:i+size])
					}
				}
			}
		}
		copyRegion(dst, src, s, size, r)
		if !bytes.Equal(dst, want) {
			t.Fatalf("shape %v size %d region %v: wrong bytes", s, size, r)
		}
	}
}

type fixture struct {
	m     *model.Model
	prof  *profiles.Profile
	board func() *Board
	input []byte
	ref   []byte
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	m, err := model.Parse(bundled.Model(), bundled.ModelName)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := profiles.Load("msp430fr5994")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := sched.Get("tile")
	p, err := s.Schedule(m, prof, sched.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := refexec.New(m).Run(bundled.Input())
	if err != nil {
		t.Fatal(err)
	}
	return fixture{m: m, prof: prof, input: bundled.Input(), ref: ref, board: func() *Board {
		b, err := New(m, p, prof, Faults{})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}}
}

// seeds computes the reference with every layer's output seeded.
func (f fixture) seeds(t *testing.T) *Seeds {
	s := NewSeeds(f.m)
	e := refexec.New(f.m)
	if err := e.SetInput(f.input); err != nil {
		t.Fatal(err)
	}
	e.InvokeEach(s.Put)
	s.Close()
	return s
}

// infer runs one inference to its end without brown-outs, browning out
// after every brownEvery-th segment if brownEvery > 0.
func (f fixture) infer(t *testing.T, b *Board, brownEvery int) []byte {
	t.Helper()
	if err := b.QueueInput(f.input); err != nil {
		t.Fatal(err)
	}
	b.PowerOn()
	for i := 1; i < 10_000_000; i++ {
		if _, ok := b.Next(math.Inf(1)); !ok {
			t.Fatal("idle before the inference finished")
		}
		if brownEvery > 0 && i%brownEvery == 0 {
			b.BrownOut(0.5)
			b.PowerOn()
			continue
		}
		if ev := b.Complete(); ev.InferenceDone {
			return append([]byte(nil), b.Output()...)
		}
	}
	t.Fatal("the inference did not finish")
	return nil
}

// TestSeedsAreUsed: seeded with the reference's layer outputs, a board
// computes no layer itself and gives the reference output, brown-outs or
// not.
func TestSeedsAreUsed(t *testing.T) {
	f := newFixture(t)
	for _, brownEvery := range []int{0, 7} {
		b := f.board()
		b.SetSeeds(f.seeds(t))
		if out := f.infer(t, b, brownEvery); !bytes.Equal(out, f.ref) {
			t.Fatalf("brown-out every %d: output differs from the reference", brownEvery)
		}
		if b.MemoMisses != 0 {
			t.Fatalf("brown-out every %d: %d layers computed despite the seeds", brownEvery, b.MemoMisses)
		}
	}
}

// TestSeedsAreKeyedOnInputs: a seed whose input bytes are not those in NVM
// is not used: the board computes the layer from NVM itself, and the output
// is still the reference's. No seeds at all, the same.
func TestSeedsAreKeyedOnInputs(t *testing.T) {
	f := newFixture(t)
	plain := f.board()
	want := f.infer(t, plain, 0)
	if !bytes.Equal(want, f.ref) || plain.MemoMisses == 0 {
		t.Fatalf("unseeded board: output ok %v, %d layers computed", bytes.Equal(want, f.ref), plain.MemoMisses)
	}
	for layer := range f.m.Layers {
		s := f.seeds(t)
		sd := &s.layers[layer]
		sd.ins[0][len(sd.ins[0])/2] ^= 1 // the seed claims other inputs
		for i := range sd.out {
			sd.out[i] ^= 0x5A // and a wrong output for them
		}
		b := f.board()
		b.SetSeeds(s)
		if out := f.infer(t, b, 0); !bytes.Equal(out, f.ref) {
			t.Fatalf("a seed of layer %d with other input bytes was used", layer)
		}
	}
	empty := NewSeeds(f.m)
	empty.Close()
	b := f.board()
	b.SetSeeds(empty)
	if out := f.infer(t, b, 0); !bytes.Equal(out, f.ref) || b.MemoMisses != plain.MemoMisses {
		t.Fatalf("closed empty seeds: output ok %v, %d layers computed, want %d", bytes.Equal(out, f.ref), b.MemoMisses, plain.MemoMisses)
	}
}

// TestSeedsWhileRunning: seeds put from another goroutine while the board
// runs (as the replay does), slowly, are waited for and used; the board's
// data operations wait for them (deferred) and leave NVM exactly as a board
// computing everything itself, at once, does (run with -race).
func TestSeedsWhileRunning(t *testing.T) {
	f := newFixture(t)
	for _, faults := range []Faults{{}, {CommitBeforeWrite: true}} {
		for trial := 0; trial < 10; trial++ {
			brownEvery := []int{0, 7, 11}[trial%3]
			plain := f.board()
			plain.faults = faults
			want := f.infer(t, plain, brownEvery)
			s := NewSeeds(f.m)
			e := refexec.New(f.m)
			if err := e.SetInput(f.input); err != nil {
				t.Fatal(err)
			}
			go func() {
				defer s.Close()
				e.InvokeEach(func(l *model.Layer, ins [][]byte, out []byte) {
					time.Sleep(time.Duration(trial) * 50 * time.Microsecond)
					s.Put(l, ins, out)
				})
			}()
			b := f.board()
			b.faults = faults
			b.SetSeeds(s)
			got := f.infer(t, b, brownEvery)
			if !bytes.Equal(got, want) || !bytes.Equal(b.NVM(), plain.NVM()) || !slices.Equal(b.Executions, plain.Executions) {
				t.Fatalf("faults %+v, trial %d: the seeded board ends in another state than the plain one", faults, trial)
			}
			if faults == (Faults{}) && (!bytes.Equal(got, f.ref) || b.MemoMisses != 0) {
				t.Fatalf("trial %d: output ok %v, %d layers computed", trial, bytes.Equal(got, f.ref), b.MemoMisses)
			}
		}
	}
}

// TestRestOfTaskIsNext: a board driven a task at a time (RestOfTask, then
// CompleteRest, or CompleteStep up to a brown-out) goes through the same
// states as one driven a segment at a time (Next, Complete): the same
// output, NVM, executions and commits, with brown-outs at the same
// segments, with and without the memo, seeds and the broken commit order.
func TestRestOfTaskIsNext(t *testing.T) {
	f := newFixture(t)
	// brownAt says whether the i-th segment is cut, and where.
	brownAt := func(seed uint64, i int) (bool, float64) {
		h := (uint64(i) + seed) * 0x9E3779B97F4A7C15
		h ^= h >> 29
		return h%13 == 0, float64(h>>40%1000) / 1000
	}
	for trial := 0; trial < 12; trial++ {
		faults := Faults{CommitBeforeWrite: trial%4 == 3}
		memo, seeded := trial%3 != 2, trial%2 == 0
		seed := uint64(trial) * 977
		mk := func() *Board {
			b := f.board()
			b.faults = faults
			b.SetMemo(memo)
			if seeded && memo {
				b.SetSeeds(f.seeds(t))
			}
			if err := b.QueueInput(f.input); err != nil {
				t.Fatal(err)
			}
			b.PowerOn()
			return b
		}
		// A segment at a time.
		a := mk()
		commitsA := 0
		for i := 0; ; i++ {
			if _, ok := a.Next(math.Inf(1)); !ok {
				t.Fatal("idle before the inference finished")
			}
			if cut, frac := brownAt(seed, i); cut {
				a.BrownOut(frac)
				a.PowerOn()
				continue
			}
			ev := a.Complete()
			commitsA += boolCount(ev.Committed)
			if ev.InferenceDone {
				break
			}
		}
		// A task at a time.
		b := mk()
		commitsB, wholes := 0, 0
		var r Steps
		for i := 0; ; {
			if !b.RestOfTask(&r) {
				if _, ok := b.Next(math.Inf(1)); !ok {
					t.Fatal("idle before the inference finished")
				}
				if cut, frac := brownAt(seed, i); cut {
					b.BrownOut(frac)
					b.PowerOn()
					i++
					continue
				}
				ev := b.Complete()
				i++
				commitsB += boolCount(ev.Committed)
				if ev.InferenceDone {
					break
				}
				continue
			}
			k := 0
			for k < r.N {
				if cut, _ := brownAt(seed, i+k); cut {
					break
				}
				k++
			}
			var ev Event
			if k == r.N && (i+trial)%5 != 0 {
				ev = b.CompleteRest(&r)
				wholes++
				commitsB += boolCount(ev.Committed)
			} else {
				for j := range k {
					ev = b.CompleteStep(&r.Segs[j])
					commitsB += boolCount(ev.Committed)
				}
			}
			if k < r.N {
				if seg, _ := b.Next(math.Inf(1)); seg != r.Segs[k] {
					t.Fatalf("trial %d: after %d steps Next gives %+v, RestOfTask gave %+v", trial, k, seg, r.Segs[k])
				}
				_, frac := brownAt(seed, i+k)
				b.BrownOut(frac)
				b.PowerOn()
			}
			i += min(k+1, r.N)
			if ev.InferenceDone {
				break
			}
		}
		if !bytes.Equal(a.Output(), b.Output()) || !bytes.Equal(a.NVM(), b.NVM()) || !slices.Equal(a.Executions, b.Executions) || commitsA != commitsB {
			t.Fatalf("trial %d (faults %+v, memo %v, seeds %v): the two boards differ (commits %d vs %d)", trial, faults, memo, seeded, commitsA, commitsB)
		}
		if !faults.CommitBeforeWrite && !bytes.Equal(b.Output(), f.ref) {
			t.Fatalf("trial %d: output is not the reference's", trial)
		}
		if wholes < 100 {
			t.Fatalf("trial %d: only %d whole tasks at once", trial, wholes)
		}
	}
}

func boolCount(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestFlushSnapshots: with seeds, the data operations wait until a
// snapshot needs them; FlushSnapshots hands every snapshot over and leaves
// the operations after the last one queued, which a later Flush applies:
// the board then ends as one that applied everything at once.
func TestFlushSnapshots(t *testing.T) {
	f := newFixture(t)
	run := func(b *Board, segments int) {
		for i := 0; i < segments; i++ {
			if _, ok := b.Next(math.Inf(1)); !ok {
				if err := b.QueueInput(f.input); err != nil {
					t.Fatal(err)
				}
				continue
			}
			b.Complete()
		}
	}
	plain := f.board()
	if err := plain.QueueInput(f.input); err != nil {
		t.Fatal(err)
	}
	plain.PowerOn()
	b := f.board()
	seeds := NewSeeds(f.m) // put only later: everything waits
	b.SetSeeds(seeds)
	if err := b.QueueInput(f.input); err != nil {
		t.Fatal(err)
	}
	b.PowerOn()
	// One inference, then part of the next.
	var got []byte
	n := 0
	for ; ; n++ {
		if _, ok := b.Next(math.Inf(1)); !ok {
			t.Fatal("idle")
		}
		if b.Complete().InferenceDone {
			break
		}
	}
	b.Snapshot(func(out []byte) { got = append([]byte(nil), out...) })
	run(plain, n+1)
	// (About a third of an inference's segments.)
	run(b, len(b.Plan().Tasks))
	run(plain, len(b.Plan().Tasks))
	if got != nil {
		t.Fatal("snapshot taken before its seeds")
	}
	e := refexec.New(f.m)
	if err := e.SetInput(f.input); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer seeds.Close()
		e.InvokeEach(seeds.Put)
	}()
	b.FlushSnapshots()
	if !bytes.Equal(got, f.ref) {
		t.Fatalf("snapshot ok %v after FlushSnapshots", got != nil && bytes.Equal(got, f.ref))
	}
	if b.q == nil || b.q.head == len(b.q.ops) {
		t.Fatal("nothing left queued after the snapshot")
	}
	if !bytes.Equal(b.NVM(), plain.NVM()) || b.q != nil {
		t.Fatal("after Flush, NVM differs from a board that applied everything at once")
	}
}
