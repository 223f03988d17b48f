//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

// useSIMD selects the AVX2 inner loops; tests turn it off to run the
// portable twins on the same data.
var useSIMD = cpu.X86.HasAVX2

//go:noescape
func convTileAVX2(acc *int32, a0, a1, a2, a3 *int16, taps *int, ntaps, cpairs int, w *int16, bias *int32)

//go:noescape
func requantAVX2(acc *int32, out *int8, n8 int, q *int32, plane, step int, zlh *[3]int32)

//go:noescape
func widenAVX2(dst *int16, src *int8, n16 int, off int16)

//go:noescape
func depthwiseAVX2(acc *int32, in *int16, taps *int, ntaps int, w *int32, wstep int, bias *int32, n8 int)
