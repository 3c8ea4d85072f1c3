package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// checksummedBlockEnc encodes blocks as writers before the seventh round of
// ADR 0004 did: the merged shards' settings with a zstd content checksum.
func checksummedBlockEnc(t testing.TB) *zstd.Encoder {
	enc, err := zstd.NewWriter(nil, append(blockEncOptions(zstd.SpeedDefault), zstd.WithEncoderCRC(true))...)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// TestWriteCorpus regenerates the committed seed corpus of FuzzIndexBlock
// from real batches: ZT_WRITE_CORPUS=1 go test -run TestWriteCorpus
// (arrowipc's TestWriteCorpus writes FuzzDecodeBatch's).
func TestWriteCorpus(t *testing.T) {
	if os.Getenv("ZT_WRITE_CORPUS") == "" {
		t.Skip("set ZT_WRITE_CORPUS=1 to rewrite the testdata/fuzz/FuzzIndexBlock seeds")
	}
	// FuzzIndexBlock: blocks and directories of a real shard's runs.
	var recs [3][]byte
	var x indexer
	for i, s := range bookinfo(t, 2) {
		x.appendRecords(&recs, &s, ref{s.StartNs, 0, uint32(i)})
	}
	blocks := map[string][]byte{}
	defer func(v byte) { blockVersion = v }(blockVersion)
	crc := checksummedBlockEnc(t)
	enc, _ := blockCodec()
	for i, run := range runs {
		sortRecords(recs[i], recLen(run))
		// seed-block-*: version 1, as collectors before version 2 wrote
		// them (TestBlockV1StillRead reads them); seed-v2-block-*: version
		// 2; both with a zstd checksum, as writers before the seventh round
		// wrote them. seed-v2-nocrc-block-*: version 2 as written now.
		for _, v := range []struct {
			prefix  string
			version byte
			enc     *zstd.Encoder
		}{{"seed-block-", blockV1, crc}, {"seed-v2-block-", blockV2, crc}, {"seed-v2-nocrc-block-", blockV2, enc}} {
			blockVersion = v.version
			blk := encodeBlockWith(v.enc, run, recs[i], new([]byte))
			blocks[v.prefix+string(run)] = blk
			blocks[strings.Replace(v.prefix, "block-", "block-truncated-", 1)+string(run)] = blk[:len(blk)/2]
		}
		blocks["seed-dir-"+string(run)] = encodeDir(run, uint64(len(recs[i])/recLen(run)), recs[i][:recLen(run)])
	}
	writeSeeds(t, "FuzzIndexBlock", blocks)
}

func writeSeeds(t *testing.T, target string, seeds map[string][]byte) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
