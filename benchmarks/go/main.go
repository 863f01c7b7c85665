// Command zotartifacts-bench times one transfer with the Go SDK and prints
// {"seconds": s, "bytes": n, "sha256": hex} (benchmarks/sdks.py drives it).
//
//	go run . -url URL -op put|upload|download -bucket B -key K -file PATH [-part-mib 64] [-parallel 4]
//	go run . -op sha256 -file PATH    (the reference: this toolchain's crypto/sha256 over the file)
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"log"
	"os"
	"time"

	zotartifacts "github.com/zot-artifact-store/zot-artifact-store/sdk/go"
)

func main() {
	url := flag.String("url", "", "the store's base URL")
	op := flag.String("op", "put", "put (one streamed PUT), upload (parallel parts), download or sha256")
	bucket := flag.String("bucket", "sdk-bench", "bucket")
	key := flag.String("key", "go.bin", "key")
	file := flag.String("file", "", "the file to send or to write")
	partMiB := flag.Int64("part-mib", 64, "part size of -op upload")
	parallel := flag.Int("parallel", 4, "parts in flight for -op upload")
	flag.Parse()
	client, err := zotartifacts.New(*url, zotartifacts.WithToken(os.Getenv("ZOT_ARTIFACTS_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	var info *zotartifacts.ObjectInfo
	switch *op {
	case "put", "upload":
		f, err := os.Open(*file)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		if *op == "put" {
			info, err = client.PutObject(ctx, *bucket, *key, f, nil)
		} else {
			st, serr := f.Stat()
			if serr != nil {
				log.Fatal(serr)
			}
			info, err = client.Upload(ctx, *bucket, *key, f, st.Size(), &zotartifacts.UploadOptions{
				PartSize: *partMiB * zotartifacts.MiB, Parallel: *parallel, NoResume: true,
			})
		}
		if err != nil {
			log.Fatal(err)
		}
	case "download":
		f, err := os.Create(*file)
		if err != nil {
			log.Fatal(err)
		}
		info, err = client.Download(ctx, *bucket, *key, f, nil)
		if err != nil {
			log.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			log.Fatal(err)
		}
		f.Close()
	case "sha256":
		f, err := os.Open(*file)
		if err != nil {
			log.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			log.Fatal(err)
		}
		f.Close()
		info = &zotartifacts.ObjectInfo{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	default:
		log.Fatalf("unknown -op %q", *op)
	}
	seconds := time.Since(start).Seconds()
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"seconds": seconds, "bytes": info.Size, "sha256": info.SHA256})
}
