package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

// go test ./harness/wire -run TestVectorsFile -update rewrites
// firmware/proto/vectors.txt from the list below (review the diff: the C
// decoder, the examples of PROTOCOL.md and this package must then agree).
var update = flag.Bool("update", false, "rewrite firmware/proto/vectors.txt")

const vectorsPath = "../../firmware/proto/vectors.txt"

type genVector struct {
	comment string
	seq     uint16
	msg     Message // a valid frame, or
	raw     []byte  // bytes on the wire of a bad frame (delimiter included)
	kind    ErrorKind
}

func seqBytes(n int, start byte, skipZero bool) []byte {
	b := make([]byte, 0, n)
	for v := start; len(b) < n; v++ {
		if skipZero && v == 0 {
			continue
		}
		b = append(b, v)
	}
	return b
}

// wireOf is the bytes on the wire of a raw decoded frame.
func wireOf(frame []byte) []byte { return AppendWire(nil, frame) }

func rawFrame(t testing.TB, h Header, payload []byte) []byte {
	f, err := MarshalRaw(h, payload)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// noZeroChunk is a DEPLOY_CHUNK of 242 data bytes whose whole decoded
// frame (254 bytes, CRC included) holds no 0x00: its COBS encoding is one
// full block, 0xFF and 254 bytes, 256 bytes on the wire with the delimiter.
func noZeroChunk() (uint16, *DeployChunk) {
	data := seqBytes(MaxData, 1, true)
	for k := byte(1); ; k++ {
		data[0] = k
		m := &DeployChunk{Offset: 0x01010101, Data: data}
		f, _ := Marshal(0x0101, m)
		if bytes.IndexByte(f, 0) < 0 {
			return 0x0101, m
		}
	}
}

func generateVectors(t testing.TB) []genVector {
	planHead := []byte{0x49, 0x48, 0x50, 0x4c, 0x01, 0x00, 0x20, 0x00, 0x00, 0x78, 0x00, 0x00}
	nz, nzMsg := noZeroChunk()
	zeros := make([]byte, MaxData)
	output := []byte{0x80, 0x80, 0x81, 0x7f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80}
	v := []genVector{
		{comment: "HELLO: no payload", seq: 1, msg: &Hello{}},
		{comment: "DEPLOY_CHUNK: the first 12 bytes of a plan image (magic IHPL, version 1, header 32 bytes, 30720 bytes)", seq: 2, msg: &DeployChunk{Offset: 0, Data: planHead}},
		{comment: "DEPLOY_CHUNK: 242 data bytes (the most a frame holds), 256 bytes on the wire", seq: 3, msg: &DeployChunk{Offset: 242, Data: seqBytes(MaxData, 0, false)}},
		{comment: "DEPLOY_CHUNK: 242 zero bytes: every byte of the data is a COBS block of its own", seq: 4, msg: &DeployChunk{Offset: 484, Data: zeros}},
		{comment: "DEPLOY_CHUNK: a 254-byte frame without any 0x00: one full COBS block (0xFF), no trailing block", seq: nz, msg: nzMsg},
		{comment: "DEPLOY_COMMIT: the image is 30720 bytes with CRC-32 0x8a9136aa", seq: 5, msg: &DeployCommit{Length: 30720, CRC: 0x8a9136aa}},
		{comment: "SET_INPUT: 8 input bytes at offset 0", seq: 6, msg: &SetInput{Offset: 0, Data: []byte{0x80, 0x81, 0xff, 0x00, 0x01, 0x7f, 0x10, 0xf0}}},
		{comment: "SET_INPUT: the last 2 bytes of a 490-byte input", seq: 7, msg: &SetInput{Offset: 488, Data: []byte{0x12, 0x34}}},
		{comment: "START: inference number 1", seq: 8, msg: &Start{Inference: 1}},
		{comment: "READ_OUTPUT: the first 10 bytes of the output tensor", seq: 9, msg: &ReadOutput{Offset: 0, Length: 10}},
		{comment: "READ_NVM: the NVM header (magic, plan tag, progress word)", seq: 10, msg: &ReadNVM{Offset: 0, Length: 16}},
		{comment: "READ_NVM: 242 bytes, the longest read", seq: 11, msg: &ReadNVM{Offset: 0x00012340, Length: MaxData}},
		{comment: "RESET_COUNTERS: no payload", seq: 12, msg: &ResetCounters{}},
		{comment: "HELLO with the largest sequence number", seq: 0xFFFF, msg: &Hello{}},
		{comment: "ACK: DEPLOY_CHUNK seq 2 done", seq: 2, msg: &Ack{Status: StatusOK, Cmd: TypeDeployChunk}},
		{comment: "ACK: DEPLOY_COMMIT refused, the board computed another CRC", seq: 5, msg: &Ack{Status: StatusBadCRC, Cmd: TypeDeployCommit, Detail: 0x1c291ca3}},
		{comment: "ACK: a DEPLOY_CHUNK past the image capacity (131072 bytes)", seq: 40, msg: &Ack{Status: StatusBadRange, Cmd: TypeDeployChunk, Detail: 131072}},
		{comment: "ACK: an unknown command type 0x09", seq: 41, msg: &Ack{Status: StatusUnknownType, Cmd: 0x09}},
		{comment: "ACK: a frame of protocol version 2 answered by a version 1 board", seq: 42, msg: &Ack{Status: StatusUnsupportedVersion, Cmd: TypeHello, Detail: 1}},
		{comment: "ACK: START without a committed image", seq: 43, msg: &Ack{Status: StatusNoImage, Cmd: TypeStart}},
		{comment: "ACK: SET_INPUT while an inference runs", seq: 44, msg: &Ack{Status: StatusBusy, Cmd: TypeSetInput}},
		{comment: "IDENTITY of an MSP430FR5994 board", seq: 1, msg: &Identity{Firmware: 0x00010000, NVMBytes: 262144, ImageBytes: 131072, Boots: 7, RxErrors: 0, Window: 8, Flags: IdentityImageValid, Name: "msp430fr5994"}},
		{comment: "IDENTITY of the STM32F405 under QEMU, no image yet, a name of 16 bytes (no 0x00 padding)", seq: 1, msg: &Identity{Firmware: 0x00010203, NVMBytes: 65536, ImageBytes: 524288, Boots: 1, RxErrors: 3, Window: 8, Flags: 0, Name: "stm32f405-qemu01"}},
		{comment: "DATA: 10 output bytes", seq: 9, msg: &Data{Offset: 0, Data: output}},
		{comment: "DATA: the NVM header: magic IHNV, plan tag 0x12345678, progress word 42 (2 bytes on the MSP430)", seq: 10, msg: &Data{Offset: 0, Data: []byte{0x49, 0x48, 0x4e, 0x56, 0x78, 0x56, 0x34, 0x12, 0x2a, 0x00, 0, 0, 0, 0, 0, 0}}},
		{comment: "BOOT: boot 12 after a brown-out, resuming after 42 committed tasks; the boot took 31337 cycles", seq: 0, msg: &Boot{Boots: 12, Resume: 42, Reason: BootPowerOn, Flags: BootNVMValid | BootImageValid | BootRunning, Cycles: 31337}},
		{comment: "BOOT: first boot of a blank board, 2 cycles on its counter", seq: 0, msg: &Boot{Boots: 1, Resume: 0, Reason: BootReset, Flags: 0, Cycles: 2}},
		{comment: "TASK_DONE: task 42 took 123456 cycles", seq: 1, msg: &TaskDone{Task: 42, Cycles: 123456}},
		{comment: "COMMIT: progress word 43 after a task", seq: 2, msg: &Commit{Progress: 43, Kind: CommitTask}},
		{comment: "COMMIT: the run-time voltage rule committed 44 tasks before sleeping", seq: 3, msg: &Commit{Progress: 44, Kind: CommitEarly}},
		{comment: "RESULT: inference 1, the 10 output bytes of the DATA above", seq: 4, msg: &Result{Inference: 1, Length: 10, CRC: Checksum(output)}},
		{comment: "LOG: a line of text", seq: 5, msg: &Log{Level: 2, Text: "resume at task 42"}},
		{comment: "LOG: empty text", seq: 6, msg: &Log{Level: 0, Text: ""}},
		{comment: "event sequence 65535 (the next is 0)", seq: 0xFFFF, msg: &TaskDone{Task: 0xFFFFFFFF, Cycles: 0}},
	}
	// Bad frames.
	good, _ := Marshal(8, &Start{Inference: 1})
	flipped := bytes.Clone(good)
	flipped[5] ^= 0x01
	v = append(v, genVector{comment: "START with one bit flipped in the payload: CRC error", raw: wireOf(flipped), kind: KindCRC})
	badCRC := bytes.Clone(good)
	binary.LittleEndian.PutUint32(badCRC[len(badCRC)-4:], 0xdeadbeef)
	v = append(v, genVector{comment: "START with a wrong CRC field", raw: wireOf(badCRC), kind: KindCRC})
	half, _ := Encode(3, &DeployChunk{Offset: 242, Data: seqBytes(MaxData, 0, false)})
	v = append(v, genVector{comment: "the first 100 bytes of a DEPLOY_CHUNK cut by a brown-out, then the next frame's delimiter: its COBS block runs past the cut", raw: append(bytes.Clone(half[:100]), 0), kind: KindCOBS})
	halfZero, _ := Encode(4, &DeployChunk{Offset: 484, Data: zeros})
	v = append(v, genVector{comment: "the first 100 bytes of the DEPLOY_CHUNK of zeros, cut between two COBS blocks", raw: append(bytes.Clone(halfZero[:100]), 0), kind: KindCRC})
	v = append(v, genVector{comment: "a decoded frame of 2 bytes", raw: []byte{0x03, 0x01, 0x01, 0x00}, kind: KindShort})
	v = append(v, genVector{comment: "a decoded frame of 7 bytes (header and 3 bytes)", raw: wireOf([]byte{1, 1, 9, 0, 0xaa, 0xbb, 0xcc}), kind: KindShort})
	long := bytes.Repeat([]byte{0x55}, 300)
	v = append(v, genVector{comment: "300 bytes of line noise before a 0x00", raw: append(long, 0), kind: KindLong})
	v = append(v, genVector{comment: "a COBS code byte (0x09) that points past the end of the frame", raw: []byte{0x09, 0x01, 0x01, 0x02, 0x00}, kind: KindCOBS})
	v = append(v, genVector{comment: "HELLO of protocol version 2", raw: wireOf(rawFrame(t, Header{Version: 2, Type: TypeHello, Seq: 42}, nil)), kind: KindVersion})
	v = append(v, genVector{comment: "an unknown command type 0x09", raw: wireOf(rawFrame(t, Header{Version: 1, Type: 0x09, Seq: 41}, []byte{1, 2, 3})), kind: KindType})
	v = append(v, genVector{comment: "an unknown event type 0x85", raw: wireOf(rawFrame(t, Header{Version: 1, Type: 0x85, Seq: 7}, []byte{1, 2, 3, 4})), kind: KindType})
	v = append(v, genVector{comment: "type 0x00 is never used", raw: wireOf(rawFrame(t, Header{Version: 1, Type: 0x00, Seq: 1}, nil)), kind: KindType})
	v = append(v, genVector{comment: "START with a 2-byte payload", raw: wireOf(rawFrame(t, Header{Version: 1, Type: TypeStart, Seq: 8}, []byte{1, 0})), kind: KindLength})
	v = append(v, genVector{comment: "DEPLOY_CHUNK without data", raw: wireOf(rawFrame(t, Header{Version: 1, Type: TypeDeployChunk, Seq: 2}, []byte{0, 0, 0, 0})), kind: KindLength})
	v = append(v, genVector{comment: "READ_NVM of 0 bytes", raw: wireOf(rawFrame(t, Header{Version: 1, Type: TypeReadNVM, Seq: 10}, []byte{0, 0, 0, 0, 0, 0})), kind: KindLength})
	v = append(v, genVector{comment: "READ_OUTPUT of 243 bytes (one more than a DATA holds)", raw: wireOf(rawFrame(t, Header{Version: 1, Type: TypeReadOutput, Seq: 9}, []byte{0, 0, 0, 0, 243, 0})), kind: KindLength})
	v = append(v, genVector{comment: "ACK with a 5-byte payload", raw: wireOf(rawFrame(t, Header{Version: 1, Type: TypeAck, Seq: 2}, []byte{0, 2, 0, 0, 0})), kind: KindLength})
	idp, _ := Marshal(1, &Identity{Name: "msp430"})
	idp[HeaderLen+20+10] = 'x' // a byte after the name's end
	binary.LittleEndian.PutUint32(idp[len(idp)-4:], Checksum(idp[:len(idp)-4]))
	v = append(v, genVector{comment: "IDENTITY whose name is not padded with 0x00", raw: wireOf(idp), kind: KindField})
	return v
}

func formatVectors(t testing.TB, vs []genVector) string {
	var sb strings.Builder
	sb.WriteString(`# Shared test vectors of the wire protocol (firmware/PROTOCOL.md).
# Generated by: go test ./harness/wire -run TestVectorsFile -update
# Checked by: go test ./harness/wire (Go codec) and firmware/host/wirecheck.c (C codec).
#
# One frame per line: the bytes on the wire in hex (the COBS encoding and the
# 0x00 delimiter, which ends the line's bytes and appears nowhere else), one
# space, then either
#   TYPE v=.. seq=.. field=value ...   the frame decodes to exactly these fields,
#                                      and encoding them gives exactly these bytes;
#   error=KIND                         the receiver drops the frame (cobs, short,
#                                      long, crc) or refuses it (version, type,
#                                      length, field).
# Numbers are decimal or 0x-hex, enumerations are names, byte fields are hex
# or a "quoted string". Lines starting with # are comments.
`)
	for _, v := range vs {
		sb.WriteString("\n# " + v.comment + "\n")
		if v.msg != nil {
			w, err := Encode(v.seq, v.msg)
			if err != nil {
				t.Fatalf("%s: %v", v.comment, err)
			}
			h := Header{Version: Version, Type: v.msg.Type(), Seq: v.seq}
			fmt.Fprintf(&sb, "%s %s\n", hex.EncodeToString(w), Format(h, v.msg))
		} else {
			fmt.Fprintf(&sb, "%s error=%v\n", hex.EncodeToString(v.raw), v.kind)
		}
	}
	return sb.String()
}

func writeVectorsIfAsked(t *testing.T) {
	if !*update {
		return
	}
	if err := os.WriteFile(vectorsPath, []byte(formatVectors(t, generateVectors(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", vectorsPath)
}
