package calibrate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func residual(A [][]float64, x, b []float64) float64 {
	s := 0.0
	for i, row := range A {
		r := -b[i]
		for j, a := range row {
			r += a * x[j]
		}
		s += r * r
	}
	return math.Sqrt(s)
}

func randomMatrix(r *rand.Rand, m, n int) [][]float64 {
	A := make([][]float64, m)
	for i := range A {
		A[i] = make([]float64, n)
		for j := range A[i] {
			A[i][j] = r.Float64()
		}
	}
	return A
}

// A consistent system with a non-negative solution: NNLS finds it.
func TestNNLSExact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 20 {
		m, n := 30+trial, 1+trial%8
		A := randomMatrix(r, m, n)
		want := make([]float64, n)
		for j := range want {
			if r.IntN(3) > 0 {
				want[j] = r.Float64() * math.Pow(10, float64(r.IntN(6)-2))
			}
		}
		b := make([]float64, m)
		for i := range b {
			for j := range want {
				b[i] += A[i][j] * want[j]
			}
		}
		x, err := NNLS(A, b)
		if err != nil {
			t.Fatal(err)
		}
		for j := range want {
			if math.Abs(x[j]-want[j]) > 1e-8*(1+want[j]) {
				t.Fatalf("trial %d: x = %v, want %v", trial, x, want)
			}
		}
	}
}

// With active constraints, NNLS's solution is the best of the
// least-squares solutions over every subset of columns that are
// non-negative (brute force over the subsets), and it satisfies the
// Karush-Kuhn-Tucker conditions.
func TestNNLSConstrained(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 50 {
		m, n := 12, 4
		A := randomMatrix(r, m, n)
		b := make([]float64, m)
		for i := range b {
			b[i] = r.NormFloat64()
		}
		x, err := NNLS(A, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range x {
			if v < 0 {
				t.Fatalf("trial %d: negative %v", trial, x)
			}
		}
		best := math.Inf(1)
		for mask := range 1 << n {
			use := make([]bool, n)
			for j := range n {
				use[j] = mask&(1<<j) != 0
			}
			s := lstsq(A, b, use)
			ok := true
			for _, v := range s {
				ok = ok && v >= 0
			}
			if ok {
				best = min(best, residual(A, s, b))
			}
		}
		if got := residual(A, x, b); got > best*(1+1e-9)+1e-12 {
			t.Fatalf("trial %d: residual %g, brute force %g", trial, got, best)
		}
		// KKT: the gradient A^T(b - Ax) is <= 0 where x = 0 and 0 where x > 0.
		for j := range n {
			g := 0.0
			for i := range m {
				rr := b[i]
				for k := range n {
					rr -= A[i][k] * x[k]
				}
				g += A[i][j] * rr
			}
			if x[j] > 0 && math.Abs(g) > 1e-9 || x[j] == 0 && g > 1e-9 {
				t.Fatalf("trial %d: KKT fails at %d: x %g gradient %g", trial, j, x[j], g)
			}
		}
	}
}

// Dependent and zero columns: the fit is still the best one, and a zero
// column gets 0.
func TestNNLSDegenerate(t *testing.T) {
	A := [][]float64{{1, 2, 0, 1}, {2, 4, 0, 1}, {3, 6, 0, 1}, {4, 8, 0, 1}}
	b := []float64{3, 5, 7, 9} // = 2*col0 + col3, or col1 + col3
	x, err := NNLS(A, b)
	if err != nil {
		t.Fatal(err)
	}
	if res := residual(A, x, b); res > 1e-9 {
		t.Errorf("residual %g, x %v", res, x)
	}
	if x[2] != 0 {
		t.Errorf("zero column got %g", x[2])
	}
	for _, bad := range []struct {
		A [][]float64
		b []float64
	}{
		{nil, nil},
		{[][]float64{{1}}, []float64{1, 2}},
		{[][]float64{{1, 2}, {1}}, []float64{1, 2}},
		{[][]float64{{math.NaN()}}, []float64{1}},
		{[][]float64{{1}}, []float64{math.Inf(1)}},
	} {
		if _, err := NNLS(bad.A, bad.b); err == nil {
			t.Errorf("NNLS(%v, %v) succeeded", bad.A, bad.b)
		}
	}
}

// Columns of very different scales (cycles per task next to cycles per
// multiply-accumulate over millions of them).
func TestNNLSScales(t *testing.T) {
	var A [][]float64
	var b []float64
	for k := 1; k <= 40; k++ {
		outs, macs := float64(k*k), float64(k*k*k*1000)
		A = append(A, []float64{1, outs, macs})
		b = append(b, 5000+120*outs+3.5*macs)
	}
	x, err := NNLS(A, b)
	if err != nil {
		t.Fatal(err)
	}
	for j, want := range []float64{5000, 120, 3.5} {
		if math.Abs(x[j]-want) > 1e-6*want {
			t.Errorf("x[%d] = %g, want %g", j, x[j], want)
		}
	}
}

func ExampleNNLS() {
	// Cycles of tasks of 1, 10 and 100 outputs: 50 per task plus 7 per
	// output; the unconstrained fit of the last column would be negative.
	A := [][]float64{{1, 1, 1}, {1, 10, 1}, {1, 100, 1}}
	b := []float64{57, 120, 750}
	x, _ := NNLS(A, b)
	fmt.Printf("per task %.0f, per output %.0f, third %.0f\n", x[0], x[1], x[2])
	// Output: per task 50, per output 7, third 0
}
