package fixedpoint

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// roundHalfAway rounds the rational num/den to the nearest integer, ties away
// from zero: the rounding every TFLite fixed-point step uses.
func roundHalfAway(num, den *big.Int) *big.Int {
	q, r := new(big.Int), new(big.Int)
	q.QuoRem(num, den, r) // truncates toward zero
	twice := new(big.Int).Abs(r)
	twice.Lsh(twice, 1)
	if twice.Cmp(new(big.Int).Abs(den)) >= 0 {
		if num.Sign()*den.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q
}

func interesting(r *rand.Rand) int32 {
	switch r.IntN(6) {
	case 0:
		return math.MinInt32 + int32(r.IntN(4))
	case 1:
		return math.MaxInt32 - int32(r.IntN(4))
	case 2:
		return int32(r.IntN(2001) - 1000)
	default:
		return int32(r.Uint32())
	}
}

// TestSRDHMIsRoundedDoublingHighProduct checks SRDHM(a,b) = round(a*b/2^31)
// with ties away from zero, and the single saturating case.
func TestSRDHMIsRoundedDoublingHighProduct(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	den := new(big.Int).Lsh(big.NewInt(1), 31)
	for i := 0; i < 50000; i++ {
		a, b := interesting(r), interesting(r)
		got := SRDHM(a, b)
		if a == math.MinInt32 && b == math.MinInt32 {
			if got != math.MaxInt32 {
				t.Fatalf("SRDHM(min, min) = %d", got)
			}
			continue
		}
		want := roundHalfAway(new(big.Int).Mul(big.NewInt(int64(a)), big.NewInt(int64(b))), den)
		if want.Int64() != int64(got) {
			t.Fatalf("SRDHM(%d, %d) = %d, want %d", a, b, got, want)
		}
	}
}

func TestRDBPOTIsRoundedDivision(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for i := 0; i < 50000; i++ {
		x, e := interesting(r), r.IntN(32)
		want := roundHalfAway(big.NewInt(int64(x)), new(big.Int).Lsh(big.NewInt(1), uint(e)))
		if got := RDBPOT(x, e); int64(got) != want.Int64() {
			t.Fatalf("RDBPOT(%d, %d) = %d, want %d", x, e, got, want)
		}
	}
}

// TestMBQMRoundsTwice pins the double rounding of TFLite's reference
// requantization: rounding the high product, then the shift. A single exact
// rounding differs on some inputs, which is why the shortcut is wrong.
func TestMBQMRoundsTwice(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	differs := 0
	for i := 0; i < 50000; i++ {
		x := int32(r.IntN(1<<22) - 1<<21)
		m := int32(1<<30 + r.IntN(1<<30))
		s := -r.IntN(20)
		hi := roundHalfAway(new(big.Int).Mul(big.NewInt(int64(x)), big.NewInt(int64(m))), new(big.Int).Lsh(big.NewInt(1), 31))
		want := roundHalfAway(hi, new(big.Int).Lsh(big.NewInt(1), uint(-s)))
		if got := MBQM(x, m, s); int64(got) != want.Int64() {
			t.Fatalf("MBQM(%d, %d, %d) = %d, want %d", x, m, s, got, want)
		}
		once := roundHalfAway(new(big.Int).Mul(big.NewInt(int64(x)), big.NewInt(int64(m))), new(big.Int).Lsh(big.NewInt(1), uint(31-s)))
		if once.Cmp(want) != 0 {
			differs++
		}
	}
	if differs == 0 {
		t.Fatal("double and single rounding never differed: the test does not exercise the double rounding")
	}
	// A positive shift lifts x before the multiply.
	if got, want := MBQM(1000, 1<<30, 3), int32(4000); got != want {
		t.Fatalf("MBQM(1000, 2^30, 3) = %d, want %d", got, want)
	}
}

func TestQuantizeMultiplierRepresentsScale(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for i := 0; i < 100000; i++ {
		real := math.Exp(r.Float64()*40 - 30) // 1e-13 .. 2e4
		m, s := QuantizeMultiplier(real)
		if real < math.Ldexp(1, -32) {
			continue // flushed to zero or nearly
		}
		if m < 1<<30 && m != 0 {
			t.Fatalf("QuantizeMultiplier(%g) multiplier %d below 2^30", real, m)
		}
		got := float64(m) * math.Ldexp(1, s-31)
		if math.Abs(got-real)/real > 1e-9 {
			t.Fatalf("QuantizeMultiplier(%g) = %d, %d, which is %g", real, m, s, got)
		}
	}
	if m, s := QuantizeMultiplier(0); m != 0 || s != 0 {
		t.Fatalf("QuantizeMultiplier(0) = %d, %d", m, s)
	}
	if m, s := QuantizeMultiplier(math.Ldexp(1, -40)); m != 0 || s != 0 {
		t.Fatalf("a scale below 2^-31 must flush to zero, got %d, %d", m, s)
	}
	// 1 - 2^-33 rounds up to 2^31 and must renormalize.
	if m, s := QuantizeMultiplier(1 - math.Ldexp(1, -33)); m != 1<<30 || s != 1 {
		t.Fatalf("QuantizeMultiplier(1-2^-33) = %d, %d, want 2^30, 1", m, s)
	}
}

// TestExpOnNegativeValues compares the fixed-point exp with math.Exp over its
// whole domain; the polynomial is accurate to 3e-7.
func TestExpOnNegativeValues(t *testing.T) {
	for raw := int64(0); raw >= -(1 << 31); raw -= 1<<18 + 12345 {
		a := int32(raw)
		got := float64(ExpOnNegativeValuesQ5(a)) / (1 << 31)
		want := math.Exp(float64(a) / (1 << 26))
		if math.Abs(got-want) > 3e-7 { // the 4th-order Taylor polynomial errs by up to (1/8)^5/120
			t.Fatalf("exp(%g) = %g, want %g", float64(a)/(1<<26), got, want)
		}
	}
}

func TestOneOverOnePlusX(t *testing.T) {
	for raw := int64(0); raw < 1<<31; raw += 1<<20 + 777 {
		got := float64(OneOverOnePlusX(int32(raw))) / (1 << 31)
		want := 1 / (1 + float64(raw)/(1<<31))
		if math.Abs(got-want) > 1e-8 {
			t.Fatalf("1/(1+%g) = %g, want %g", float64(raw)/(1<<31), got, want)
		}
	}
}

func TestSaturatingLeftShift(t *testing.T) {
	cases := []struct {
		x    int32
		e    int
		want int32
	}{
		{1, 3, 8}, {-1, 3, -8}, {1 << 28, 3, math.MaxInt32}, {-(1 << 28), 3, math.MinInt32},
		{(1 << 28) - 1, 3, ((1 << 28) - 1) * 8}, {5, 0, 5}, {7, 31, math.MaxInt32}, {-7, 40, math.MinInt32}, {0, 40, 0},
	}
	for _, c := range cases {
		if got := SaturatingLeftShift(c.x, c.e); got != c.want {
			t.Errorf("SaturatingLeftShift(%d, %d) = %d, want %d", c.x, c.e, got, c.want)
		}
	}
}

func TestSoftmaxScalingMatchesVectorParams(t *testing.T) {
	// The softmax vector's params are beta*scale*2^26 = 1077952640/2^31 * 2^19
	// and diff_min -3968; PreprocessSoftmaxScaling must give them back.
	real := float64(1077952640) / (1 << 31) * (1 << 19) / (1 << 26)
	m, s := PreprocessSoftmaxScaling(1, real, 5)
	if m != 1077952640 || s != 19 {
		t.Fatalf("PreprocessSoftmaxScaling = %d, %d, want 1077952640, 19", m, s)
	}
	if r := SoftmaxInputRadius(5, 19); r != 3968 {
		t.Fatalf("SoftmaxInputRadius(5, 19) = %d, want 3968", r)
	}
}
