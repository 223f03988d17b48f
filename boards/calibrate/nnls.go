package calibrate

import (
	"errors"
	"fmt"
	"math"
)

// NNLS solves min ||A x - b|| subject to x >= 0 (Lawson and Hanson's
// active-set method, "Solving Least Squares Problems", 1974, ch. 23). A has
// one row per observation. Columns are scaled to unit norm first (the
// problem's solution does not change; its conditioning does), an all-zero
// column gets 0, and of columns that are linear combinations of others only
// some get a non-zero value (any least-squares solution is as good as
// another there).
func NNLS(A [][]float64, b []float64) ([]float64, error) {
	m := len(A)
	if m == 0 || len(b) != m {
		return nil, fmt.Errorf("nnls: %d rows and %d right-hand sides", m, len(b))
	}
	n := len(A[0])
	for i, row := range A {
		if len(row) != n {
			return nil, fmt.Errorf("nnls: row %d has %d columns, row 0 %d", i, len(row), n)
		}
		for _, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("nnls: row %d is not finite", i)
			}
		}
		if math.IsNaN(b[i]) || math.IsInf(b[i], 0) {
			return nil, fmt.Errorf("nnls: b[%d] is not finite", i)
		}
	}
	// Scale the columns.
	scale := make([]float64, n)
	for j := range n {
		s := 0.0
		for i := range m {
			s += A[i][j] * A[i][j]
		}
		scale[j] = math.Sqrt(s)
	}
	a := make([][]float64, m)
	for i := range m {
		a[i] = make([]float64, n)
		for j := range n {
			if scale[j] > 0 {
				a[i][j] = A[i][j] / scale[j]
			}
		}
	}
	bnorm := 0.0
	for _, v := range b {
		bnorm = max(bnorm, math.Abs(v))
	}
	tol := 1e-10 * math.Max(bnorm, 1) * math.Sqrt(float64(m))

	x := make([]float64, n)
	passive := make([]bool, n)
	gradient := func() []float64 { // A^T (b - A x)
		r := make([]float64, m)
		for i := range m {
			r[i] = b[i]
			for j := range n {
				r[i] -= a[i][j] * x[j]
			}
		}
		w := make([]float64, n)
		for j := range n {
			for i := range m {
				w[j] += a[i][j] * r[i]
			}
		}
		return w
	}
	for iter := 0; ; iter++ {
		if iter > 3*n+10 {
			return nil, errors.New("nnls: no convergence")
		}
		w := gradient()
		best := -1
		for j := range n {
			if !passive[j] && scale[j] > 0 && w[j] > tol && (best < 0 || w[j] > w[best]) {
				best = j
			}
		}
		if best < 0 {
			break
		}
		passive[best] = true
		for inner := 0; ; inner++ {
			if inner > 3*n+10 {
				return nil, errors.New("nnls: no convergence")
			}
			s := lstsq(a, b, passive)
			if s[best] <= 0 && inner == 0 {
				// The column entering brings nothing the others do not
				// (dependent): leave it out.
				passive[best] = false
				scale[best] = 0
				break
			}
			ok := true
			for j := range n {
				if passive[j] && s[j] <= 0 {
					ok = false
				}
			}
			if ok {
				copy(x, s)
				break
			}
			alpha := math.Inf(1)
			for j := range n {
				if passive[j] && s[j] <= 0 {
					alpha = min(alpha, x[j]/(x[j]-s[j]))
				}
			}
			for j := range n {
				if passive[j] {
					x[j] += alpha * (s[j] - x[j])
					if x[j] <= 1e-15 {
						x[j] = 0
						passive[j] = false
					}
				}
			}
		}
	}
	for j := range n {
		if scale[j] > 0 {
			x[j] /= scale[j]
		} else {
			x[j] = 0
		}
	}
	return x, nil
}

// lstsq solves the least-squares problem of the columns in use (the others
// get 0) by Householder QR; a column (nearly) dependent on the ones before
// it gets 0.
func lstsq(a [][]float64, b []float64, use []bool) []float64 {
	m, n := len(a), len(use)
	var cols []int
	for j, u := range use {
		if u {
			cols = append(cols, j)
		}
	}
	k := len(cols)
	r := make([][]float64, m) // m x k, then R in its upper triangle
	for i := range m {
		r[i] = make([]float64, k)
		for c, j := range cols {
			r[i][c] = a[i][j]
		}
	}
	y := append([]float64(nil), b...)
	diag := make([]float64, k)
	for c := 0; c < k && c < m; c++ {
		norm := 0.0
		for i := c; i < m; i++ {
			norm += r[i][c] * r[i][c]
		}
		norm = math.Sqrt(norm)
		if norm == 0 {
			continue
		}
		alpha := -math.Copysign(norm, r[c][c])
		v := make([]float64, m-c)
		for i := c; i < m; i++ {
			v[i-c] = r[i][c]
		}
		v[0] -= alpha
		vv := 0.0
		for _, e := range v {
			vv += e * e
		}
		if vv == 0 {
			diag[c] = alpha
			continue
		}
		apply := func(col func(i int) *float64) {
			d := 0.0
			for i := c; i < m; i++ {
				d += v[i-c] * *col(i)
			}
			f := 2 * d / vv
			for i := c; i < m; i++ {
				*col(i) -= f * v[i-c]
			}
		}
		for cc := c; cc < k; cc++ {
			apply(func(i int) *float64 { return &r[i][cc] })
		}
		apply(func(i int) *float64 { return &y[i] })
		diag[c] = r[c][c]
	}
	maxDiag := 0.0
	for _, d := range diag {
		maxDiag = max(maxDiag, math.Abs(d))
	}
	z := make([]float64, k)
	for c := min(k, m) - 1; c >= 0; c-- {
		if math.Abs(r[c][c]) <= 1e-9*maxDiag {
			continue // dependent: 0
		}
		s := y[c]
		for cc := c + 1; cc < k; cc++ {
			s -= r[c][cc] * z[cc]
		}
		z[c] = s / r[c][c]
	}
	x := make([]float64, n)
	for c, j := range cols {
		x[j] = z[c]
	}
	return x
}
