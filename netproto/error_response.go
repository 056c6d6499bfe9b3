package netproto

// ErrorResponse is the body of every response frame whose Status is not
// CodeOK, whatever its opcode; the code itself is the Status. Start and End
// give the topic's valid offset range with CodeOffsetOutOfRange, the
// damaged offsets with CodeCorrupt (when known), and are zero otherwise.
// Decode aliases Message to the source.
//
//	u64 Start | u64 End | u8 Retriable (0 or 1) | u16 len + Message
type ErrorResponse struct {
	Start     uint64
	End       uint64
	Retriable bool
	Message   []byte
}

// AppendTo appends the body to dst. A Message longer than MaxString bytes is
// cut.
func (m *ErrorResponse) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, m.Start)
	dst = appendU64(dst, m.End)
	dst = appendFlag(dst, m.Retriable)
	return appendStr(dst, m.Message)
}

// Decode decodes a body; Message aliases src.
func (m *ErrorResponse) Decode(src []byte) error {
	d := bodyDecoder{b: src, what: "error response"}
	m.Start = d.u64()
	m.End = d.u64()
	m.Retriable = d.flag()
	m.Message = d.str()
	return d.done()
}

// Err returns the error the response describes, given the frame's Status. It
// copies Message.
func (m *ErrorResponse) Err(code Code) *Error {
	return &Error{Code: code, Message: string(m.Message), Retriable: m.Retriable, Start: m.Start, End: m.End}
}

// DecodeError turns an error response frame (its Status and body) into an
// *Error. A body that does not decode still yields an error with the
// frame's code, noting the defect in its message.
func DecodeError(status Code, b []byte) *Error {
	var m ErrorResponse
	if err := m.Decode(b); err != nil {
		return &Error{Code: status, Message: "undecodable error body", Retriable: status.Retriable()}
	}
	return m.Err(status)
}
