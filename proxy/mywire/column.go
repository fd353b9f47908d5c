package mywire

import "encoding/binary"

// Column types (MYSQL_TYPE_*) and column flags used by the result sets a proxy writes itself.
const (
	TypeDouble   byte = 0x05
	TypeNull     byte = 0x06
	TypeLong     byte = 0x03
	TypeLongLong byte = 0x08
	TypeVarchar  byte = 0x0f
	TypeDecimal  byte = 0xf6
	TypeVarStr   byte = 0xfd

	FlagNotNull  uint16 = 1
	FlagUnsigned uint16 = 32
	FlagBinary   uint16 = 128
	FlagNum      uint16 = 32768
)

// ColumnDef is a protocol-4.1 column definition of a result set.
type ColumnDef struct {
	Schema, Table, OrgTable, Name, OrgName string
	Charset                                uint16 // collation id (63: binary)
	Length                                 uint32
	Type                                   byte
	Flags                                  uint16
	Decimals                               byte
}

// AppendColumnDef appends the payload of c (not framed). extMeta: the connection negotiated
// MariaDB's extended metadata (MariaDBClientExtendedMetadata), which adds a (here empty)
// length-encoded field after OrgName.
func AppendColumnDef(dst []byte, c ColumnDef, extMeta bool) []byte {
	dst = AppendLenEncString(dst, "def")
	for _, s := range []string{c.Schema, c.Table, c.OrgTable, c.Name, c.OrgName} {
		dst = AppendLenEncString(dst, s)
	}
	if extMeta {
		dst = AppendLenEncInt(dst, 0)
	}
	dst = append(dst, 0x0c)
	dst = binary.LittleEndian.AppendUint16(dst, c.Charset)
	dst = binary.LittleEndian.AppendUint32(dst, c.Length)
	dst = append(dst, c.Type)
	dst = binary.LittleEndian.AppendUint16(dst, c.Flags)
	return append(dst, c.Decimals, 0, 0)
}

// ColumnDefType returns the type of the column definition payload p (ok false when p is
// malformed); extMeta as for AppendColumnDef.
func ColumnDefType(p []byte, extMeta bool) (typ byte, ok bool) {
	fields := 6
	if extMeta {
		fields++
	}
	for range fields {
		_, n, ok := ReadLenEncString(p)
		if !ok {
			return 0, false
		}
		p = p[n:]
	}
	if len(p) < 8 || p[0] != 0x0c {
		return 0, false
	}
	return p[7], true
}
