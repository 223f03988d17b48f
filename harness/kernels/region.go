// Package kernels holds the int8 operator kernels of the reference executor,
// with TFLite's reference arithmetic bit for bit.
//
// Every kernel computes one rectangular Region of its output (batches x rows x
// columns x channels) from whole inputs and leaves the rest of the output
// untouched. The intermittent tasks that the scheduler cuts a layer into are
// such regions, so computing an output in any split of regions gives exactly
// the output computed whole.
package kernels

import "fmt"

// Shape is the shape of an NHWC tensor. Lower-rank tensors are padded with
// leading ones: a [batches, depth] matrix is {N: batches, H: 1, W: 1, C: depth}.
type Shape struct{ N, H, W, C int }

// Elems is the number of elements of the shape.
func (s Shape) Elems() int { return s.N * s.H * s.W * s.C }

// Full is the region covering the whole shape.
func (s Shape) Full() Region { return Region{0, s.N, 0, s.H, 0, s.W, 0, s.C} }

func (s Shape) String() string { return fmt.Sprintf("[%d,%d,%d,%d]", s.N, s.H, s.W, s.C) }

// Region is a box of an NHWC tensor: batches [N0,N1), rows [Y0,Y1),
// columns [X0,X1) and channels [C0,C1).
type Region struct{ N0, N1, Y0, Y1, X0, X1, C0, C1 int }

// Elems is the number of elements in the region (0 if it is empty).
func (r Region) Elems() int {
	if r.Empty() {
		return 0
	}
	return (r.N1 - r.N0) * (r.Y1 - r.Y0) * (r.X1 - r.X0) * (r.C1 - r.C0)
}

// Empty reports whether the region holds no element.
func (r Region) Empty() bool { return r.N1 <= r.N0 || r.Y1 <= r.Y0 || r.X1 <= r.X0 || r.C1 <= r.C0 }

// Within reports whether the region lies inside a tensor of shape s.
func (r Region) Within(s Shape) bool {
	return 0 <= r.N0 && r.N0 <= r.N1 && r.N1 <= s.N &&
		0 <= r.Y0 && r.Y0 <= r.Y1 && r.Y1 <= s.H &&
		0 <= r.X0 && r.X0 <= r.X1 && r.X1 <= s.W &&
		0 <= r.C0 && r.C0 <= r.C1 && r.C1 <= s.C
}

func (r Region) String() string {
	return fmt.Sprintf("n[%d:%d] y[%d:%d] x[%d:%d] c[%d:%d]", r.N0, r.N1, r.Y0, r.Y1, r.X0, r.X1, r.C0, r.C1)
}

// Clamp limits v to [lo, hi].
func clamp(v, lo, hi int32) int32 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}
