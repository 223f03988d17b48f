package plan_test

import (
	"math/rand/v2"
	"testing"

	"github.com/batteryless/harness/harness/kernels"
	"github.com/batteryless/harness/harness/plan"
)

// TestChunks: the chunks of a region cover it exactly once, in packed
// region order (each starts where the one before ended), each at most the
// pixel count given, and each a rectangle the kernels can compute.
func TestChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 3000; trial++ {
		r := kernels.Region{N0: rng.IntN(2), Y0: rng.IntN(4), X0: rng.IntN(4), C0: rng.IntN(3)}
		r.N1, r.Y1, r.X1, r.C1 = r.N0+1+rng.IntN(2), r.Y0+1+rng.IntN(7), r.X0+1+rng.IntN(7), r.C0+1+rng.IntN(5)
		px := 1 + rng.IntN(30)
		k := plan.Chunks(r, px)
		next := 0
		seen := map[[3]int]bool{}
		for j := 0; j < k; j++ {
			s, before := plan.Chunk(r, px, j)
			if before != next {
				t.Fatalf("region %+v, %d pixels: chunk %d starts at element %d, the one before ended at %d", r, px, j, before, next)
			}
			if s.Empty() || s.C0 != r.C0 || s.C1 != r.C1 || s.N1-s.N0 != 1 || s.Y0 < r.Y0 || s.Y1 > r.Y1 || s.X0 < r.X0 || s.X1 > r.X1 {
				t.Fatalf("region %+v, %d pixels: chunk %d is %+v", r, px, j, s)
			}
			if pixels := (s.Y1 - s.Y0) * (s.X1 - s.X0); pixels > px {
				t.Fatalf("region %+v, %d pixels: chunk %d has %d pixels", r, px, j, pixels)
			}
			if s.Y1-s.Y0 > 1 && (s.X0 != r.X0 || s.X1 != r.X1) {
				t.Fatalf("region %+v: chunk %d of several rows is not whole rows: %+v", r, j, s)
			}
			for y := s.Y0; y < s.Y1; y++ {
				for x := s.X0; x < s.X1; x++ {
					p := [3]int{s.N0, y, x}
					if seen[p] {
						t.Fatalf("region %+v, %d pixels: pixel %v twice", r, px, p)
					}
					seen[p] = true
				}
			}
			next += s.Elems()
		}
		if next != r.Elems() || len(seen) != (r.N1-r.N0)*(r.Y1-r.Y0)*(r.X1-r.X0) {
			t.Fatalf("region %+v, %d pixels: %d chunks cover %d of %d elements", r, px, k, next, r.Elems())
		}
	}
}
