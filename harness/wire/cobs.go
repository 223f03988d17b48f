package wire

// COBS (Consistent Overhead Byte Stuffing, Cheshire and Baker 1999): the
// encoding has no 0x00 byte, so 0x00 delimits frames. Each block is a code
// byte c (1..255) followed by c-1 data bytes; a block with c < 255 stands
// for its data followed by a 0x00, except the last block of the frame. The
// encoding here is the canonical (shortest) one: a frame that ends exactly
// after a full block of 254 non-zero bytes gets no trailing 0x01 block. A
// frame of n <= 254 bytes encodes to exactly n+1 bytes.

// AppendCOBS appends the COBS encoding of src to dst (without a delimiter).
func AppendCOBS(dst, src []byte) []byte {
	ci := len(dst) // index of the pending code byte
	dst = append(dst, 0)
	code := byte(1)
	for i, b := range src {
		if b == 0 {
			dst[ci] = code
			ci, code = len(dst), 1
			dst = append(dst, 0)
			continue
		}
		dst = append(dst, b)
		code++
		if code == 0xFF {
			dst[ci] = code
			code = 1
			if i+1 == len(src) {
				return dst // a full block ends the frame: no empty block after it
			}
			ci = len(dst)
			dst = append(dst, 0)
		}
	}
	dst[ci] = code
	return dst
}

// DecodeCOBS decodes one COBS-encoded frame (without its delimiter) into
// dst[:0] and returns it. It may decode in place (dst = src[:0]): the
// output never runs ahead of the input. A 0x00 inside src or a code byte
// that points past the end is an error of KindCOBS.
func DecodeCOBS(dst, src []byte) ([]byte, error) {
	dst = dst[:0]
	for i := 0; i < len(src); {
		code := int(src[i])
		if code == 0 {
			return nil, errorf(KindCOBS, "COBS: 0x00 at byte %d of the frame", i)
		}
		i++
		end := i + code - 1
		if end > len(src) {
			return nil, errorf(KindCOBS, "COBS: code 0x%02x at byte %d runs %d bytes past the end of the frame", code, i-1, end-len(src))
		}
		for ; i < end; i++ {
			if src[i] == 0 {
				return nil, errorf(KindCOBS, "COBS: 0x00 at byte %d of the frame", i)
			}
			dst = append(dst, src[i])
		}
		if code < 0xFF && i < len(src) {
			dst = append(dst, 0)
		}
	}
	return dst, nil
}
