// Package objstore is a small client for S3-compatible object stores (AWS
// S3, MinIO, Ceph RGW, SeaweedFS, GCS's S3 interface): PUT, GET, HEAD and
// DELETE of objects and ListObjectsV2 with pagination, signed with AWS
// Signature Version 4, over path-style or virtual-host-style addressing.
//
// Credentials follow the AWS conventions: AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, else the shared credentials
// file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile
// AWS_PROFILE or "default"). Credentials never appear in errors or logs.
//
// Responses are untrusted: list and error bodies are read with a size cap
// and checked field by field (FuzzParseList covers the parser).
package objstore
