// Package wire is the host side of the wire protocol between the harness and
// a board (firmware/PROTOCOL.md): COBS framing with a 0x00 delimiter, a
// CRC-32 over every decoded frame, a 4-byte header (version, type, sequence
// number) and the typed messages: host commands, the board's responses and
// the board's events.
//
// Layers, from the line up:
//
//   - Decoder and Reader split a byte stream at 0x00, undo COBS and check the
//     length and the CRC. A frame cut by a brown-out or garbage on the line
//     gives one *Error and the next frame decodes normally.
//   - Unmarshal parses a decoded frame into its Header and a Message; Marshal
//     and Encode do the reverse (Encode adds COBS and the delimiter).
//   - Format and ParseText write and read the one-line text form of a frame
//     used by the shared test vectors (firmware/proto/vectors.txt) and the
//     examples of PROTOCOL.md.
//
// Nothing here panics on any input, and no decoder allocates more than one
// frame's worth (MaxWire bytes) for any input.
package wire

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Sizes of the framing (PROTOCOL.md, "Framing").
const (
	Version    = 1   // the protocol version this package speaks
	MaxWire    = 256 // bytes of one frame on the wire, the 0x00 delimiter included
	MaxFrame   = 254 // bytes of a decoded frame: header, payload, CRC
	HeaderLen  = 4   // version u8, type u8, sequence u16
	CRCLen     = 4   // CRC-32 (IEEE, as zlib), little-endian, last in the frame
	MinFrame   = HeaderLen + CRCLen
	MaxPayload = MaxFrame - MinFrame // 246
	MaxData    = MaxPayload - 4      // 242: data bytes after a u32 offset
	NameLen    = 16                  // the profile name field of IDENTITY
	MaxText    = MaxPayload - 1      // 245: text bytes of LOG
)

// ErrorKind says what is wrong with a frame. Its String is the name the
// shared test vectors use.
type ErrorKind uint8

// Error kinds: framing (the frame is dropped, the decoder resynchronizes at
// the next 0x00), then header and payload (the frame arrived intact but its
// content is not understood).
const (
	KindCOBS    ErrorKind = iota + 1 // a COBS code byte points past the end of the frame
	KindShort                        // decoded frame shorter than MinFrame
	KindLong                         // more than MaxWire bytes before a delimiter
	KindCRC                          // CRC-32 mismatch
	KindVersion                      // unknown protocol version
	KindType                         // unknown message type
	KindLength                       // payload too short for its type, or a data field out of bounds
	KindField                        // a field value that is not allowed
)

var kindNames = [...]string{"", "cobs", "short", "long", "crc", "version", "type", "length", "field"}

func (k ErrorKind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// KindByName is the ErrorKind of a name ("crc", ...).
func KindByName(s string) (ErrorKind, bool) {
	for i, n := range kindNames {
		if n == s && i != 0 {
			return ErrorKind(i), true
		}
	}
	return 0, false
}

// Error is what is wrong with one frame.
type Error struct {
	Kind ErrorKind
	Msg  string
}

func (e *Error) Error() string { return "wire: " + e.Msg }

func errorf(k ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Type is a message type (byte 1 of a frame).
type Type uint8

// Message types. Host commands are 0x01..0x3F, the board's responses to
// them 0x40..0x7F, the board's events 0x80..0xFF; 0x00 is never used.
const (
	TypeHello         Type = 0x01
	TypeDeployChunk   Type = 0x02
	TypeDeployCommit  Type = 0x03
	TypeSetInput      Type = 0x04
	TypeStart         Type = 0x05
	TypeReadOutput    Type = 0x06
	TypeReadNVM       Type = 0x07
	TypeResetCounters Type = 0x08

	TypeAck      Type = 0x40
	TypeIdentity Type = 0x41
	TypeData     Type = 0x42

	TypeBoot     Type = 0x80
	TypeTaskDone Type = 0x81
	TypeCommit   Type = 0x82
	TypeResult   Type = 0x83
	TypeLog      Type = 0x84
)

var typeNames = map[Type]string{
	TypeHello: "HELLO", TypeDeployChunk: "DEPLOY_CHUNK", TypeDeployCommit: "DEPLOY_COMMIT",
	TypeSetInput: "SET_INPUT", TypeStart: "START", TypeReadOutput: "READ_OUTPUT",
	TypeReadNVM: "READ_NVM", TypeResetCounters: "RESET_COUNTERS",
	TypeAck: "ACK", TypeIdentity: "IDENTITY", TypeData: "DATA",
	TypeBoot: "BOOT", TypeTaskDone: "TASK_DONE", TypeCommit: "COMMIT", TypeResult: "RESULT", TypeLog: "LOG",
}

// Types lists every message type of this version, in numeric order.
func Types() []Type {
	return []Type{TypeHello, TypeDeployChunk, TypeDeployCommit, TypeSetInput, TypeStart,
		TypeReadOutput, TypeReadNVM, TypeResetCounters, TypeAck, TypeIdentity, TypeData,
		TypeBoot, TypeTaskDone, TypeCommit, TypeResult, TypeLog}
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("0x%02x", uint8(t))
}

// Known reports whether t is a message type of this version.
func (t Type) Known() bool { _, ok := typeNames[t]; return ok }

// IsCommand, IsResponse and IsEvent give the class of a type by its range.
func (t Type) IsCommand() bool  { return t >= 0x01 && t <= 0x3F }
func (t Type) IsResponse() bool { return t >= 0x40 && t <= 0x7F }
func (t Type) IsEvent() bool    { return t >= 0x80 }

// TypeByName is the Type of a name ("DEPLOY_CHUNK", ...).
func TypeByName(s string) (Type, bool) {
	for t, n := range typeNames {
		if n == s {
			return t, true
		}
	}
	return 0, false
}

// Header is the first four bytes of every frame. Their layout is the same
// in every protocol version.
type Header struct {
	Version uint8
	Type    Type
	Seq     uint16 // command: the host's sequence; response: the command's; event: the board's event sequence
}

// Checksum is the CRC-32 of the protocol (IEEE 802.3, as zlib's crc32).
func Checksum(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

// Marshal returns the decoded frame of message m with sequence number seq:
// header, payload, CRC. It fails when a field does not fit (data too long,
// a name too long, ...).
func Marshal(seq uint16, m Message) ([]byte, error) {
	if m == nil {
		return nil, errorf(KindField, "nil message")
	}
	b := make([]byte, HeaderLen, MaxFrame)
	b[0], b[1] = Version, byte(m.Type())
	binary.LittleEndian.PutUint16(b[2:], seq)
	b, err := m.appendPayload(b)
	if err != nil {
		return nil, err
	}
	if len(b)+CRCLen > MaxFrame {
		return nil, errorf(KindLength, "%v: payload of %d bytes, at most %d fit a frame", m.Type(), len(b)-HeaderLen, MaxPayload)
	}
	return binary.LittleEndian.AppendUint32(b, Checksum(b)), nil
}

// MarshalRaw returns a decoded frame with any header and payload (for tests
// and for replies in another version); it fails only when it is too long.
func MarshalRaw(h Header, payload []byte) ([]byte, error) {
	if HeaderLen+len(payload)+CRCLen > MaxFrame {
		return nil, errorf(KindLength, "payload of %d bytes, at most %d fit a frame", len(payload), MaxPayload)
	}
	b := make([]byte, HeaderLen, HeaderLen+len(payload)+CRCLen)
	b[0], b[1] = h.Version, byte(h.Type)
	binary.LittleEndian.PutUint16(b[2:], h.Seq)
	b = append(b, payload...)
	return binary.LittleEndian.AppendUint32(b, Checksum(b)), nil
}

// Encode returns the bytes on the wire of message m: the COBS encoding of
// its decoded frame followed by the 0x00 delimiter.
func Encode(seq uint16, m Message) ([]byte, error) {
	f, err := Marshal(seq, m)
	if err != nil {
		return nil, err
	}
	return AppendWire(make([]byte, 0, len(f)+2), f), nil
}

// AppendWire appends the COBS encoding of a decoded frame and the delimiter.
func AppendWire(dst, frame []byte) []byte {
	return append(AppendCOBS(dst, frame), 0)
}

// CheckFrame checks a decoded frame's length and CRC.
func CheckFrame(frame []byte) error {
	if len(frame) < MinFrame {
		return errorf(KindShort, "frame of %d bytes, at least %d (header and CRC)", len(frame), MinFrame)
	}
	if len(frame) > MaxFrame {
		return errorf(KindLong, "frame of %d bytes, at most %d", len(frame), MaxFrame)
	}
	n := len(frame) - CRCLen
	if got, want := Checksum(frame[:n]), binary.LittleEndian.Uint32(frame[n:]); got != want {
		return errorf(KindCRC, "CRC 0x%08x in the frame, 0x%08x computed over its %d bytes", want, got, n)
	}
	return nil
}

// ParseHeader reads the header of a decoded frame after checking its length
// and CRC; it does not look at the version or the type.
func ParseHeader(frame []byte) (Header, error) {
	if err := CheckFrame(frame); err != nil {
		return Header{}, err
	}
	return Header{Version: frame[0], Type: Type(frame[1]), Seq: binary.LittleEndian.Uint16(frame[2:])}, nil
}

// Unmarshal parses a decoded frame (header, payload, CRC). With an unknown
// version or type the error's Kind is KindVersion or KindType, and the
// header and an *Unknown message holding the raw payload are returned too,
// so that a receiver can answer or count it. Data fields are copies: the
// frame may be reused.
func Unmarshal(frame []byte) (Header, Message, error) {
	h, err := ParseHeader(frame)
	if err != nil {
		return Header{}, nil, err
	}
	payload := frame[HeaderLen : len(frame)-CRCLen]
	if h.Version != Version {
		return h, &Unknown{T: h.Type, Payload: clone(payload)},
			errorf(KindVersion, "protocol version %d, this side speaks %d", h.Version, Version)
	}
	m := newMessage(h.Type)
	if m == nil {
		return h, &Unknown{T: h.Type, Payload: clone(payload)},
			errorf(KindType, "unknown message type 0x%02x", uint8(h.Type))
	}
	if err := m.parsePayload(payload); err != nil {
		return h, nil, err
	}
	return h, m, nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
