//go:build !amd64 || purego

package kernels

// Without AVX2 assembly the portable twins do the work.
var useSIMD = false

func convTileAVX2(acc *int32, a0, a1, a2, a3 *int16, taps *int, ntaps, cpairs int, w *int16, bias *int32) {
	panic("kernels: no SIMD inner loops in this build")
}

func requantAVX2(acc *int32, out *int8, n8 int, q *int32, plane, step int, zlh *[3]int32) {
	panic("kernels: no SIMD inner loops in this build")
}

func widenAVX2(dst *int16, src *int8, n16 int, off int16) {
	panic("kernels: no SIMD inner loops in this build")
}

func depthwiseAVX2(acc *int32, in *int16, taps *int, ntaps int, w *int32, wstep int, bias *int32, n8 int) {
	panic("kernels: no SIMD inner loops in this build")
}
