package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Message is one message of the protocol: a pointer to one of the structs
// below. The payload layouts are in PROTOCOL.md; offsets there count from
// the start of the frame (the payload starts at byte 4).
type Message interface {
	Type() Type
	appendPayload(b []byte) ([]byte, error)
	parsePayload(p []byte) error
}

// Status is the result of a command, in an ACK.
type Status uint8

// Statuses.
const (
	StatusOK                 Status = 0 // done
	StatusUnsupportedVersion Status = 1 // the frame's version is not the board's; detail: the board's version
	StatusUnknownType        Status = 2 // not a command type of the board's version
	StatusBadLength          Status = 3 // payload too short, or data length out of bounds
	StatusBadRange           Status = 4 // offset+length beyond the region; detail: the region's size
	StatusBadCRC             Status = 5 // DEPLOY_COMMIT: the image's CRC differs; detail: the CRC the board computed
	StatusNoImage            Status = 6 // START without a committed image
	StatusBusy               Status = 7 // DEPLOY_* or SET_INPUT while an inference runs
	StatusFailed             Status = 8 // the port reported a failure; detail: the port's code
)

var statusNames = [...]string{"OK", "UNSUPPORTED_VERSION", "UNKNOWN_TYPE", "BAD_LENGTH", "BAD_RANGE", "BAD_CRC", "NO_IMAGE", "BUSY", "FAILED"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprint(uint8(s))
}

// Boot reasons.
const (
	BootPowerOn  uint8 = 0 // power-up or recovery from a brown-out: the normal boot of a battery-less board
	BootReset    uint8 = 1 // reset pin, debugger or QEMU system_reset
	BootWatchdog uint8 = 2
	BootSoftware uint8 = 3
	BootUnknown  uint8 = 0xFF
)

// BOOT flags.
const (
	BootNVMValid   uint8 = 1 << 0 // the NVM header's magic and plan tag match the image: Resume is meaningful
	BootImageValid uint8 = 1 << 1 // a committed plan image is present
	BootRunning    uint8 = 1 << 2 // an inference is in progress (Resume < tasks): the runtime resumes it
)

// IDENTITY flags.
const (
	IdentityImageValid uint8 = 1 << 0
)

// COMMIT kinds.
const (
	CommitTask  uint8 = 0 // after a task marked to commit
	CommitEarly uint8 = 1 // the run-time voltage rule commits before sleeping
)

var le = binary.LittleEndian

// Hello asks the board who it is; the answer is an Identity. It also
// clears the board's history of recent commands.
type Hello struct{}

// DeployChunk writes Data at Offset of the plan image.
type DeployChunk struct {
	Offset uint32
	Data   []byte // 1..MaxData bytes
}

// DeployCommit ends a deploy: the board checks the CRC of image bytes
// [0, Length) and marks the image valid.
type DeployCommit struct {
	Length uint32
	CRC    uint32
}

// SetInput writes Data at Offset of the input tensor.
type SetInput struct {
	Offset uint32
	Data   []byte // 1..MaxData bytes
}

// Start begins inference number Inference: the board resets the progress
// word and runs. A START for the inference already started is acknowledged
// and not re-executed.
type Start struct{ Inference uint32 }

// ReadOutput asks for Length bytes of the output tensor at Offset; the
// answer is a Data.
type ReadOutput struct {
	Offset uint32
	Length uint16 // 1..MaxData
}

// ReadNVM asks for Length bytes of NVM at Offset; the answer is a Data.
type ReadNVM struct {
	Offset uint32
	Length uint16 // 1..MaxData
}

// ResetCounters zeroes the board's boot count and receive error count.
type ResetCounters struct{}

// Ack answers a command (its header carries the command's sequence).
type Ack struct {
	Status Status
	Cmd    Type   // the acknowledged command's type
	Detail uint32 // by status (see Status); 0 if none
}

// Identity answers HELLO.
type Identity struct {
	Firmware   uint32 // major<<16 | minor<<8 | patch
	NVMBytes   uint32
	ImageBytes uint32 // the plan image's capacity
	Boots      uint32 // boots since the last RESET_COUNTERS
	RxErrors   uint16 // frames dropped (COBS, length, CRC) since the last RESET_COUNTERS, saturating
	Window     uint8  // the most commands the host may have outstanding (half the board's de-duplication history)
	Flags      uint8  // IdentityImageValid
	Name       string // the device profile's name, at most NameLen bytes, no 0x00
}

// Data answers READ_OUTPUT and READ_NVM.
type Data struct {
	Offset uint32
	Data   []byte // 1..MaxData bytes
}

// Boot is the board's first event after every boot; its event sequence is 0.
type Boot struct {
	Boots  uint32 // boot count, this boot included
	Resume uint32 // the progress word: tasks done and committed
	Reason uint8  // Boot* reasons
	Flags  uint8  // Boot* flags
	// Cycles is the board's cycle counter when it sent BOOT: what the boot
	// took since the counter started (at reset, or early in the port's
	// start-up). 0 from a board whose BOOT has no such field (10 bytes of
	// payload, before the field was added at its end).
	Cycles uint32
}

// TaskDone: a task's outputs are written.
type TaskDone struct {
	Task   uint32 // task index
	Cycles uint32 // cycles the task took (port_cycles difference, mod 2^32)
}

// Commit: the progress word was written.
type Commit struct {
	Progress uint32 // the new progress word
	Kind     uint8  // CommitTask or CommitEarly
}

// Result: an inference completed.
type Result struct {
	Inference uint32 // the number START gave
	Length    uint32 // output tensor bytes
	CRC       uint32 // CRC-32 of the output tensor
}

// Log is a line of text from the firmware.
type Log struct {
	Level uint8 // 0 error, 1 warning, 2 info, 3 debug
	Text  string
}

// Unknown is a frame of a type (or version) this side does not know.
type Unknown struct {
	T       Type
	Payload []byte
}

func (*Hello) Type() Type         { return TypeHello }
func (*DeployChunk) Type() Type   { return TypeDeployChunk }
func (*DeployCommit) Type() Type  { return TypeDeployCommit }
func (*SetInput) Type() Type      { return TypeSetInput }
func (*Start) Type() Type         { return TypeStart }
func (*ReadOutput) Type() Type    { return TypeReadOutput }
func (*ReadNVM) Type() Type       { return TypeReadNVM }
func (*ResetCounters) Type() Type { return TypeResetCounters }
func (*Ack) Type() Type           { return TypeAck }
func (*Identity) Type() Type      { return TypeIdentity }
func (*Data) Type() Type          { return TypeData }
func (*Boot) Type() Type          { return TypeBoot }
func (*TaskDone) Type() Type      { return TypeTaskDone }
func (*Commit) Type() Type        { return TypeCommit }
func (*Result) Type() Type        { return TypeResult }
func (*Log) Type() Type           { return TypeLog }
func (u *Unknown) Type() Type     { return u.T }

// newMessage is an empty message of a known type, nil otherwise.
func newMessage(t Type) Message {
	switch t {
	case TypeHello:
		return &Hello{}
	case TypeDeployChunk:
		return &DeployChunk{}
	case TypeDeployCommit:
		return &DeployCommit{}
	case TypeSetInput:
		return &SetInput{}
	case TypeStart:
		return &Start{}
	case TypeReadOutput:
		return &ReadOutput{}
	case TypeReadNVM:
		return &ReadNVM{}
	case TypeResetCounters:
		return &ResetCounters{}
	case TypeAck:
		return &Ack{}
	case TypeIdentity:
		return &Identity{}
	case TypeData:
		return &Data{}
	case TypeBoot:
		return &Boot{}
	case TypeTaskDone:
		return &TaskDone{}
	case TypeCommit:
		return &Commit{}
	case TypeResult:
		return &Result{}
	case TypeLog:
		return &Log{}
	}
	return nil
}

// need checks that a fixed payload has at least n bytes (longer ones are
// accepted: fields are only ever appended within a version).
func need(t Type, p []byte, n int, layout string) error {
	if len(p) < n {
		return errorf(KindLength, "%v payload of %d bytes, needs %d (%s)", t, len(p), n, layout)
	}
	return nil
}

// offsetData is the layout of DEPLOY_CHUNK, SET_INPUT and DATA.
func appendOffsetData(b []byte, t Type, off uint32, data []byte) ([]byte, error) {
	if len(data) < 1 || len(data) > MaxData {
		return nil, errorf(KindLength, "%v data of %d bytes, must be 1..%d", t, len(data), MaxData)
	}
	return append(le.AppendUint32(b, off), data...), nil
}

func parseOffsetData(t Type, p []byte) (uint32, []byte, error) {
	if len(p) < 5 {
		return 0, nil, errorf(KindLength, "%v payload of %d bytes, needs 5..%d (offset u32, data 1..%d)", t, len(p), 4+MaxData, MaxData)
	}
	return le.Uint32(p), clone(p[4:]), nil
}

func appendRead(b []byte, t Type, off uint32, n uint16) ([]byte, error) {
	if n < 1 || n > MaxData {
		return nil, errorf(KindLength, "%v length %d, must be 1..%d", t, n, MaxData)
	}
	return le.AppendUint16(le.AppendUint32(b, off), n), nil
}

func parseRead(t Type, p []byte) (uint32, uint16, error) {
	if err := need(t, p, 6, "offset u32, length u16"); err != nil {
		return 0, 0, err
	}
	n := le.Uint16(p[4:])
	if n < 1 || n > MaxData {
		return 0, 0, errorf(KindLength, "%v length %d, must be 1..%d", t, n, MaxData)
	}
	return le.Uint32(p), n, nil
}

func (m *Hello) appendPayload(b []byte) ([]byte, error) { return b, nil }
func (m *Hello) parsePayload(p []byte) error            { return nil }

func (m *DeployChunk) appendPayload(b []byte) ([]byte, error) {
	return appendOffsetData(b, m.Type(), m.Offset, m.Data)
}
func (m *DeployChunk) parsePayload(p []byte) (err error) {
	m.Offset, m.Data, err = parseOffsetData(m.Type(), p)
	return err
}

func (m *DeployCommit) appendPayload(b []byte) ([]byte, error) {
	return le.AppendUint32(le.AppendUint32(b, m.Length), m.CRC), nil
}
func (m *DeployCommit) parsePayload(p []byte) error {
	if err := need(m.Type(), p, 8, "length u32, crc u32"); err != nil {
		return err
	}
	m.Length, m.CRC = le.Uint32(p), le.Uint32(p[4:])
	return nil
}

func (m *SetInput) appendPayload(b []byte) ([]byte, error) {
	return appendOffsetData(b, m.Type(), m.Offset, m.Data)
}
func (m *SetInput) parsePayload(p []byte) (err error) {
	m.Offset, m.Data, err = parseOffsetData(m.Type(), p)
	return err
}

func (m *Start) appendPayload(b []byte) ([]byte, error) { return le.AppendUint32(b, m.Inference), nil }
func (m *Start) parsePayload(p []byte) error {
	if err := need(m.Type(), p, 4, "inference u32"); err != nil {
		return err
	}
	m.Inference = le.Uint32(p)
	return nil
}

func (m *ReadOutput) appendPayload(b []byte) ([]byte, error) {
	return appendRead(b, m.Type(), m.Offset, m.Length)
}
func (m *ReadOutput) parsePayload(p []byte) (err error) {
	m.Offset, m.Length, err = parseRead(m.Type(), p)
	return err
}

func (m *ReadNVM) appendPayload(b []byte) ([]byte, error) {
	return appendRead(b, m.Type(), m.Offset, m.Length)
}
func (m *ReadNVM) parsePayload(p []byte) (err error) {
	m.Offset, m.Length, err = parseRead(m.Type(), p)
	return err
}

func (m *ResetCounters) appendPayload(b []byte) ([]byte, error) { return b, nil }
func (m *ResetCounters) parsePayload(p []byte) error            { return nil }

func (m *Ack) appendPayload(b []byte) ([]byte, error) {
	return le.AppendUint32(append(b, byte(m.Status), byte(m.Cmd)), m.Detail), nil
}
func (m *Ack) parsePayload(p []byte) error {
	if err := need(m.Type(), p, 6, "status u8, cmd u8, detail u32"); err != nil {
		return err
	}
	m.Status, m.Cmd, m.Detail = Status(p[0]), Type(p[1]), le.Uint32(p[2:])
	return nil
}

const identityLen = 20 + NameLen

func (m *Identity) appendPayload(b []byte) ([]byte, error) {
	if len(m.Name) > NameLen {
		return nil, errorf(KindField, "IDENTITY name %q is %d bytes, at most %d", m.Name, len(m.Name), NameLen)
	}
	if bytes.IndexByte([]byte(m.Name), 0) >= 0 {
		return nil, errorf(KindField, "IDENTITY name %q holds a 0x00", m.Name)
	}
	b = le.AppendUint32(b, m.Firmware)
	b = le.AppendUint32(b, m.NVMBytes)
	b = le.AppendUint32(b, m.ImageBytes)
	b = le.AppendUint32(b, m.Boots)
	b = le.AppendUint16(b, m.RxErrors)
	b = append(b, m.Window, m.Flags)
	b = append(b, m.Name...)
	return append(b, make([]byte, NameLen-len(m.Name))...), nil
}
func (m *Identity) parsePayload(p []byte) error {
	if err := need(m.Type(), p, identityLen, "fw u32, nvm u32, image u32, boots u32, rx_errors u16, window u8, flags u8, name [16]"); err != nil {
		return err
	}
	m.Firmware, m.NVMBytes, m.ImageBytes, m.Boots = le.Uint32(p), le.Uint32(p[4:]), le.Uint32(p[8:]), le.Uint32(p[12:])
	m.RxErrors, m.Window, m.Flags = le.Uint16(p[16:]), p[18], p[19]
	name := p[20 : 20+NameLen]
	n := bytes.IndexByte(name, 0)
	if n < 0 {
		n = NameLen
	}
	for _, c := range name[n:] {
		if c != 0 {
			return errorf(KindField, "IDENTITY name is not padded with 0x00 after its end")
		}
	}
	m.Name = string(name[:n])
	return nil
}

func (m *Data) appendPayload(b []byte) ([]byte, error) {
	return appendOffsetData(b, m.Type(), m.Offset, m.Data)
}
func (m *Data) parsePayload(p []byte) (err error) {
	m.Offset, m.Data, err = parseOffsetData(m.Type(), p)
	return err
}

func (m *Boot) appendPayload(b []byte) ([]byte, error) {
	b = append(le.AppendUint32(le.AppendUint32(b, m.Boots), m.Resume), m.Reason, m.Flags)
	return le.AppendUint32(b, m.Cycles), nil
}
func (m *Boot) parsePayload(p []byte) error {
	if err := need(m.Type(), p, 10, "boots u32, resume u32, reason u8, flags u8"); err != nil {
		return err
	}
	m.Boots, m.Resume, m.Reason, m.Flags = le.Uint32(p), le.Uint32(p[4:]), p[8], p[9]
	m.Cycles = 0
	if len(p) >= 14 { // the payload grew at its end (PROTOCOL.md, versioning)
		m.Cycles = le.Uint32(p[10:])
	}
	return nil
}

func (m *TaskDone) appendPayload(b []byte) ([]byte, error) {
	return le.AppendUint32(le.AppendUint32(b, m.Task), m.Cycles), nil
}
func (m *TaskDone) parsePayload(p []byte) error {
	if err := need(m.Type(), p, 8, "task u32, cycles u32"); err != nil {
		return err
	}
	m.Task, m.Cycles = le.Uint32(p), le.Uint32(p[4:])
	return nil
}

func (m *Commit) appendPayload(b []byte) ([]byte, error) {
	return append(le.AppendUint32(b, m.Progress), m.Kind), nil
}
func (m *Commit) parsePayload(p []byte) error {
	if err := need(m.Type(), p, 5, "progress u32, kind u8"); err != nil {
		return err
	}
	m.Progress, m.Kind = le.Uint32(p), p[4]
	return nil
}

func (m *Result) appendPayload(b []byte) ([]byte, error) {
	return le.AppendUint32(le.AppendUint32(le.AppendUint32(b, m.Inference), m.Length), m.CRC), nil
}
func (m *Result) parsePayload(p []byte) error {
	if err := need(m.Type(), p, 12, "inference u32, length u32, crc u32"); err != nil {
		return err
	}
	m.Inference, m.Length, m.CRC = le.Uint32(p), le.Uint32(p[4:]), le.Uint32(p[8:])
	return nil
}

func (m *Log) appendPayload(b []byte) ([]byte, error) {
	if len(m.Text) > MaxText {
		return nil, errorf(KindLength, "LOG text of %d bytes, at most %d", len(m.Text), MaxText)
	}
	return append(append(b, m.Level), m.Text...), nil
}
func (m *Log) parsePayload(p []byte) error {
	if err := need(m.Type(), p, 1, "level u8, text"); err != nil {
		return err
	}
	m.Level, m.Text = p[0], string(p[1:])
	return nil
}

func (m *Unknown) appendPayload(b []byte) ([]byte, error) {
	if len(m.Payload) > MaxPayload {
		return nil, errorf(KindLength, "payload of %d bytes, at most %d", len(m.Payload), MaxPayload)
	}
	return append(b, m.Payload...), nil
}
func (m *Unknown) parsePayload(p []byte) error { m.Payload = clone(p); return nil }
