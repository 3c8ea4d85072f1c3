// Package kafkawire frames Kafka requests and responses of kmsg (franz-go's
// protocol implementation) as they travel on a connection: a size, the
// header, the body. Test code only.
package kafkawire

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Request frames r with correlation id corr and client id "kgo-1".
func Request(r kmsg.Request, corr int32) []byte {
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(r.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(r.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = append(b, 0, 5, 'k', 'g', 'o', '-', '1')
	if r.IsFlexible() {
		b = append(b, 0)
	}
	b = r.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// Response frames r with correlation id corr (ApiVersions responses keep
// header version 0 whatever their version).
func Response(r kmsg.Response, corr int32) []byte {
	b := binary.BigEndian.AppendUint32([]byte{0, 0, 0, 0}, uint32(corr))
	if r.IsFlexible() && r.Key() != 18 {
		b = append(b, 0)
	}
	b = r.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}
