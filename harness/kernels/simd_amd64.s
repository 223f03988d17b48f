//go:build amd64 && !purego

#include "textflag.h"

// AVX2 inner loops of the fast kernels. Each has a portable Go twin in
// simd_go.go with the same contract; simd_test.go checks that the two agree
// bit for bit. Go's assembler writes operands source first: VPADDD a, b, d
// is d = b + a.

// func convTileAVX2(acc *int32, a0, a1, a2, a3 *int16, taps *int, ntaps, cpairs int, w *int16, bias *int32)
//
// Four output pixels by sixteen output channels. Pixel i reads, at every
// byte offset taps[t], cpairs pairs of int16 inputs; w holds, per pair, the
// sixteen channels' two weights (64 bytes). acc (4 x 16 int32) gets bias
// plus the dot products.
TEXT ·convTileAVX2(SB), NOSPLIT, $0-80
	MOVQ a0+8(FP), SI
	MOVQ a1+16(FP), R8
	MOVQ a2+24(FP), R9
	MOVQ a3+32(FP), R10
	MOVQ taps+40(FP), R11
	MOVQ ntaps+48(FP), R12
	MOVQ w+64(FP), DX
	MOVQ bias+72(FP), AX
	VMOVDQU (AX), Y0
	VMOVDQU 32(AX), Y1
	VMOVDQA Y0, Y2
	VMOVDQA Y1, Y3
	VMOVDQA Y0, Y4
	VMOVDQA Y1, Y5
	VMOVDQA Y0, Y6
	VMOVDQA Y1, Y7

tap:
	MOVQ (R11), AX
	LEAQ (SI)(AX*1), BX
	LEAQ (R8)(AX*1), CX
	LEAQ (R9)(AX*1), DI
	LEAQ (R10)(AX*1), AX
	MOVQ cpairs+56(FP), R13

pair:
	VMOVDQU (DX), Y8
	VMOVDQU 32(DX), Y9
	VPBROADCASTD (BX), Y10
	VPBROADCASTD (CX), Y11
	VPMADDWD Y8, Y10, Y12
	VPADDD Y12, Y0, Y0
	VPMADDWD Y9, Y10, Y13
	VPADDD Y13, Y1, Y1
	VPMADDWD Y8, Y11, Y14
	VPADDD Y14, Y2, Y2
	VPMADDWD Y9, Y11, Y15
	VPADDD Y15, Y3, Y3
	VPBROADCASTD (DI), Y10
	VPBROADCASTD (AX), Y11
	VPMADDWD Y8, Y10, Y12
	VPADDD Y12, Y4, Y4
	VPMADDWD Y9, Y10, Y13
	VPADDD Y13, Y5, Y5
	VPMADDWD Y8, Y11, Y14
	VPADDD Y14, Y6, Y6
	VPMADDWD Y9, Y11, Y15
	VPADDD Y15, Y7, Y7
	ADDQ $64, DX
	ADDQ $4, BX
	ADDQ $4, CX
	ADDQ $4, DI
	ADDQ $4, AX
	DECQ R13
	JNZ  pair

	ADDQ $8, R11
	DECQ R12
	JNZ  tap

	MOVQ    acc+0(FP), DI
	VMOVDQU Y0, (DI)
	VMOVDQU Y1, 32(DI)
	VMOVDQU Y2, 64(DI)
	VMOVDQU Y3, 96(DI)
	VMOVDQU Y4, 128(DI)
	VMOVDQU Y5, 160(DI)
	VMOVDQU Y6, 192(DI)
	VMOVDQU Y7, 224(DI)
	VZEROUPPER
	RET

// func requantAVX2(acc *int32, out *int8, n8 int, q *int32, plane, step int, zlh *[3]int32)
//
// TFLite's MultiplyByQuantizedMultiplier on 8*n8 accumulators, then the
// output zero point, the clamp and the narrowing to int8. q points at the
// multipliers of the first 8 values; the left shifts, right shifts, their
// masks and half masks follow at 1, 2, 3 and 4 times plane bytes; step is
// the byte distance to the next 8 values' parameters (0: one set for all).
TEXT ·requantAVX2(SB), NOSPLIT, $0-56
	MOVQ acc+0(FP), SI
	MOVQ out+8(FP), DI
	MOVQ n8+16(FP), CX
	MOVQ q+24(FP), DX
	MOVQ plane+32(FP), R9
	LEAQ (R9)(R9*2), R10
	MOVQ step+40(FP), R8
	MOVQ zlh+48(FP), AX
	VPBROADCASTD (AX), Y14
	VPBROADCASTD 4(AX), Y12
	VPBROADCASTD 8(AX), Y13
	// 2^30 in every quadword: the nudge of the doubling high multiply.
	MOVQ $0x40000000, AX
	MOVQ AX, X15
	VPBROADCASTQ X15, Y15
	TESTQ CX, CX
	JZ   done

loop:
	VMOVDQU (SI), Y0
	VMOVDQU (DX)(R9*1), Y1   // left shift
	VPSLLVD Y1, Y0, Y0
	VMOVDQU (DX), Y2         // multiplier
	// Even lanes: 64-bit products, plus 2^30, bits 31..62 are the result.
	VPMULDQ Y2, Y0, Y3
	VPADDQ  Y15, Y3, Y3
	VPSRLQ  $31, Y3, Y3
	// Odd lanes the same, moved down and back up.
	VPSRLQ  $32, Y0, Y4
	VPSRLQ  $32, Y2, Y5
	VPMULDQ Y5, Y4, Y4
	VPADDQ  Y15, Y4, Y4
	VPSRLQ  $31, Y4, Y4
	VPSLLQ  $32, Y4, Y4
	VPBLENDD $0xAA, Y4, Y3, Y3
	// Rounding divide by 2^right: ties away from zero.
	VMOVDQU (DX)(R9*2), Y6   // right shift
	VMOVDQU (DX)(R10*1), Y7  // mask = 2^right - 1
	VMOVDQU (DX)(R9*4), Y8   // mask >> 1
	VPAND   Y7, Y3, Y9
	VPSRLD  $31, Y3, Y10
	VPADDD  Y10, Y8, Y8
	VPSRAVD Y6, Y3, Y3
	VPCMPGTD Y8, Y9, Y9
	VPSUBD  Y9, Y3, Y3
	VPADDD  Y14, Y3, Y3
	VPMAXSD Y12, Y3, Y3
	VPMINSD Y13, Y3, Y3
	VEXTRACTI128 $1, Y3, X4
	VPACKSSDW X4, X3, X3
	VPACKSSWB X3, X3, X3
	MOVQ    X3, (DI)
	ADDQ $32, SI
	ADDQ $8, DI
	ADDQ R8, DX
	DECQ CX
	JNZ  loop

done:
	VZEROUPPER
	RET

// func widenAVX2(dst *int16, src *int8, n16 int, off int16)
//
// dst[i] = src[i] + off for 16*n16 values (the sums fit int16).
TEXT ·widenAVX2(SB), NOSPLIT, $0-26
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n16+16(FP), CX
	MOVWQSX off+24(FP), AX
	MOVQ AX, X1
	VPBROADCASTW X1, Y1
	TESTQ CX, CX
	JZ   wdone

wloop:
	VPMOVSXBW (SI), Y0
	VPADDW    Y1, Y0, Y0
	VMOVDQU   Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  wloop

wdone:
	VZEROUPPER
	RET

// func depthwiseAVX2(acc *int32, in *int16, taps *int, ntaps int, w *int32, wstep int, bias *int32, n8 int)
//
// One output pixel of a depthwise convolution over 8*n8 channels: acc[c] =
// bias[c] + sum over taps t of in[taps[t]/2 + c] * w[t*wstep/4 + c].
TEXT ·depthwiseAVX2(SB), NOSPLIT, $0-64
	MOVQ acc+0(FP), DI
	MOVQ in+8(FP), SI
	MOVQ w+32(FP), DX
	MOVQ wstep+40(FP), R9
	MOVQ bias+48(FP), BX
	MOVQ n8+56(FP), R10
	TESTQ R10, R10
	JZ   ddone

dblock:
	VMOVDQU (BX), Y0
	MOVQ taps+16(FP), R11
	MOVQ ntaps+24(FP), R12
	MOVQ DX, CX

dtap:
	MOVQ (R11), AX
	VPMOVSXWD (SI)(AX*1), Y1
	VPMULLD (CX), Y1, Y1
	VPADDD  Y1, Y0, Y0
	ADDQ R9, CX
	ADDQ $8, R11
	DECQ R12
	JNZ  dtap

	VMOVDQU Y0, (DI)
	ADDQ $32, DI
	ADDQ $16, SI
	ADDQ $32, DX
	ADDQ $32, BX
	DECQ R10
	JNZ  dblock

ddone:
	VZEROUPPER
	RET
