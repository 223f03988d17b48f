package kernels

// Scratch is the working memory of the kernels' fast paths: the int16 input
// window of a convolution, partial sums, tap offsets. It grows to the
// largest layer it has served and is then reused, so an executor that keeps
// one allocates nothing per inference. The zero value is ready; a nil
// *Scratch makes a kernel allocate its own. Not safe for concurrent use.
type Scratch struct {
	i8  []int8
	i16 []int16
	win []int16 // a convolution's widened input window, when i16 holds its gathered rows
	i32 []int32
	off []int
}

func (s *Scratch) int8s(n int) []int8 {
	if cap(s.i8) < n {
		s.i8 = make([]int8, n)
	}
	return s.i8[:n]
}

func (s *Scratch) int16s(n int) []int16 {
	if cap(s.i16) < n {
		s.i16 = make([]int16, n)
	}
	return s.i16[:n]
}

func (s *Scratch) window16(n int) []int16 {
	if cap(s.win) < n {
		s.win = make([]int16, n)
	}
	return s.win[:n]
}

func (s *Scratch) int32s(n int) []int32 {
	if cap(s.i32) < n {
		s.i32 = make([]int32, n)
	}
	return s.i32[:n]
}

func (s *Scratch) ints(n int) []int {
	if cap(s.off) < n {
		s.off = make([]int, n)
	}
	return s.off[:n]
}
