package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestMessageGolden(t *testing.T) {
	tests := []struct {
		name string
		msg  Message
		want string
	}{
		{"keep-alive", Message{KeepAlive: true}, "00 00 00 00"},
		{"choke", Message{Type: Choke}, "00 00 00 01 00"},
		{"unchoke", Message{Type: Unchoke}, "00 00 00 01 01"},
		{"interested", Message{Type: Interested}, "00 00 00 01 02"},
		{"not interested", Message{Type: NotInterested}, "00 00 00 01 03"},
		{"have", Message{Type: Have, Index: 0x01020304}, "00 00 00 05 04 01 02 03 04"},
		{"bitfield", Message{Type: Bitfield, Bitfield: []byte{0xff, 0x80}}, "00 00 00 03 05 ff 80"},
		{"bitfield empty", Message{Type: Bitfield}, "00 00 00 01 05"},
		{"request", Message{Type: Request, Index: 1, Begin: 0x4000, Length: 0x4000},
			"00 00 00 0d 06 00 00 00 01 00 00 40 00 00 00 40 00"},
		{"piece", Message{Type: Piece, Index: 2, Begin: 0x8000, Block: []byte("abc")},
			"00 00 00 0c 07 00 00 00 02 00 00 80 00 61 62 63"},
		{"piece empty block", Message{Type: Piece, Index: 2, Begin: 0},
			"00 00 00 09 07 00 00 00 02 00 00 00 00"},
		{"cancel", Message{Type: Cancel, Index: 0xffffffff, Begin: 0, Length: 1},
			"00 00 00 0d 08 ff ff ff ff 00 00 00 00 00 00 00 01"},
		{"port", Message{Type: Port, Port: 6881}, "00 00 00 03 09 1a e1"},
		{"extended", Message{Type: Extended, ExtendedID: 3, Payload: []byte("de")},
			"00 00 00 04 14 03 64 65"},
		{"extended handshake", Message{Type: Extended, ExtendedID: 0, Payload: []byte("d1:md11:ut_metadatai1eee")},
			"00 00 00 1a 14 00 64 31 3a 6d 64 31 31 3a 75 74 5f 6d 65 74 61 64 61 74 61 69 31 65 65 65"},
		{"extended empty payload", Message{Type: Extended, ExtendedID: 255}, "00 00 00 02 14 ff"},
		{"suggest piece", Message{Type: SuggestPiece, Index: 0x0506}, "00 00 00 05 0d 00 00 05 06"},
		{"have all", Message{Type: HaveAll}, "00 00 00 01 0e"},
		{"have none", Message{Type: HaveNone}, "00 00 00 01 0f"},
		{"reject request", Message{Type: RejectRequest, Index: 3, Begin: 0x4000, Length: 0x4000},
			"00 00 00 0d 10 00 00 00 03 00 00 40 00 00 00 40 00"},
		{"allowed fast", Message{Type: AllowedFast, Index: 1059}, "00 00 00 05 11 00 00 04 23"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.want)
			got := tt.msg.Append(nil)
			if !bytes.Equal(got, want) {
				t.Fatalf("Append:\n got %s\nwant %s", spacedHex(got), tt.want)
			}
			// Appending must not disturb what is already in the buffer.
			prefixed := tt.msg.Append([]byte{0xaa})
			if prefixed[0] != 0xaa || !bytes.Equal(prefixed[1:], want) {
				t.Fatalf("Append to non-empty buffer: got %s", spacedHex(prefixed))
			}
			parsed, err := ParseMessage(got[4:])
			if err != nil {
				t.Fatalf("ParseMessage: %v", err)
			}
			if !messagesEqual(parsed, tt.msg) {
				t.Fatalf("round trip: got %+v, want %+v", parsed, tt.msg)
			}
		})
	}
}

func TestParseMessageBad(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    error
	}{
		// Choke..not-interested have no "one too short": the empty payload
		// is a keep-alive.
		{"choke long", "00 00", ErrMessageLength},
		{"unchoke long", "01 00", ErrMessageLength},
		{"interested long", "02 00", ErrMessageLength},
		{"not interested long", "03 00", ErrMessageLength},
		{"have short", "04 00 00 00", ErrMessageLength},
		{"have long", "04 00 00 00 00 00", ErrMessageLength},
		{"request short", "06 00 00 00 00 00 00 00 00 00 00 40", ErrMessageLength},
		{"request long", "06 00 00 00 00 00 00 00 00 00 00 40 00 00", ErrMessageLength},
		{"cancel short", "08 00 00 00 00 00 00 00 00 00 00 40", ErrMessageLength},
		{"cancel long", "08 00 00 00 00 00 00 00 00 00 00 40 00 00", ErrMessageLength},
		{"piece short", "07 00 00 00 00 00 00 00", ErrMessageLength},
		{"port short", "09 1a", ErrMessageLength},
		{"port long", "09 1a e1 00", ErrMessageLength},
		{"extended short", "14", ErrMessageLength},
		{"request length 0", "06 00 00 00 00 00 00 00 00 00 00 00 00", ErrBlockLength},
		{"request length 16385", "06 00 00 00 00 00 00 00 00 00 00 40 01", ErrBlockLength},
		{"request length max uint32", "06 00 00 00 00 00 00 00 00 ff ff ff ff", ErrBlockLength},
		{"cancel length 0", "08 00 00 00 00 00 00 00 00 00 00 00 00", ErrBlockLength},
		{"cancel length 16385", "08 00 00 00 00 00 00 00 00 00 00 40 01", ErrBlockLength},
		{"unknown 10", "0a", ErrUnknownMessage},
		{"suggest short", "0d 00 00 00", ErrMessageLength},
		{"suggest long", "0d 00 00 00 00 00", ErrMessageLength},
		{"have all long", "0e 00", ErrMessageLength},
		{"have none long", "0f 00", ErrMessageLength},
		{"reject short", "10 00 00 00 00 00 00 00 00 00 00 40", ErrMessageLength},
		{"reject long", "10 00 00 00 00 00 00 00 00 00 00 40 00 00", ErrMessageLength},
		{"reject length 0", "10 00 00 00 00 00 00 00 00 00 00 00 00", ErrBlockLength},
		{"reject length 16385", "10 00 00 00 00 00 00 00 00 00 00 40 01", ErrBlockLength},
		{"allowed fast short", "11 00", ErrMessageLength},
		{"allowed fast long", "11 00 00 00 00 00", ErrMessageLength},
		{"unknown 18", "12", ErrUnknownMessage},
		{"unknown 255 with body", "ff 01 02 03", ErrUnknownMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkBad(t, unhex(t, tt.payload), tt.want)
		})
	}

	// Piece blocks: exactly MaxRequestLen is fine, one more is not.
	piece := make([]byte, 9+MaxRequestLen+1)
	piece[0] = byte(Piece)
	if _, err := ParseMessage(piece[:len(piece)-1]); err != nil {
		t.Errorf("piece with %d-byte block: %v", MaxRequestLen, err)
	}
	checkBad(t, piece, ErrBlockLength)
}

func checkBad(t *testing.T, payload []byte, want error) {
	t.Helper()
	m, err := ParseMessage(payload)
	if !errors.Is(err, want) {
		t.Fatalf("ParseMessage(%s) = %+v, %v; want error %v", spacedHex(payload[:min(len(payload), 16)]), m, err, want)
	}
	var me *MessageError
	if !errors.As(err, &me) || me.ID != payload[0] || me.Len != len(payload) {
		t.Fatalf("error %v: want *MessageError with ID %d and Len %d", err, payload[0], len(payload))
	}
	if want != ErrUnknownMessage && errors.Is(err, ErrUnknownMessage) {
		t.Fatalf("malformed known message must not look ignorable: %v", err)
	}
}

func TestUnknownMessageErrorText(t *testing.T) {
	_, err := ParseMessage([]byte{0x15, 1})
	if err == nil || err.Error() != "wire: unknown(21) message with 2-byte payload: unknown message id" {
		t.Fatalf("got %v", err)
	}
}

func TestParseMessageAliases(t *testing.T) {
	// Block and Payload alias the input; that is the contract that makes
	// piece parsing allocation-free, so pin it.
	in := unhex(t, "07 00 00 00 00 00 00 00 00 61")
	m, err := ParseMessage(in)
	if err != nil {
		t.Fatal(err)
	}
	in[9] = 'z'
	if string(m.Block) != "z" {
		t.Fatalf("Block does not alias input: %q", m.Block)
	}
}

func TestMessageTypeString(t *testing.T) {
	for typ, want := range map[MessageType]string{
		Choke: "choke", NotInterested: "not interested", Port: "port",
		Extended: "extended", 10: "unknown(10)", 255: "unknown(255)",
		HaveAll: "have all", RejectRequest: "reject request", AllowedFast: "allowed fast",
	} {
		if got := typ.String(); got != want {
			t.Errorf("MessageType(%d).String() = %q, want %q", uint8(typ), got, want)
		}
	}
}

func TestMaxMessageLen(t *testing.T) {
	tests := []struct {
		numPieces int
		want      int
	}{
		{0, 1 + 64<<10},
		{-1, 1 + 64<<10},
		{1, 2 + BlockSize + 1<<10},                       // extended metadata piece dominates
		{8 * 1000, 2 + BlockSize + 1<<10},                // bitfield of 1001 bytes
		{8 * 20000, 1 + 20000},                           // bitfield dominates
		{8*20000 + 1, 1 + 20001},                         // ceil
		{1 << 20, 1 + 1<<17},                             // larger than the unknown-count cap
		{8 * (BlockSize + 1<<10), 2 + BlockSize + 1<<10}, // bitfield message one byte under the extended cap
	}
	for _, tt := range tests {
		if got := MaxMessageLen(tt.numPieces); got != tt.want {
			t.Errorf("MaxMessageLen(%d) = %d, want %d", tt.numPieces, got, tt.want)
		}
	}
	// Every message we accept must fit.
	if n := MaxMessageLen(1); n < 9+MaxRequestLen {
		t.Errorf("MaxMessageLen(1) = %d, smaller than a full piece message", n)
	}
}
