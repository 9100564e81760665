// Package testpb holds Protobuf messages for eventfx's own tests of the
// Protobuf codec: order.pb.go is protoc-gen-go's output for order.proto
// (protoc --go_out=. --go_opt=paths=source_relative order.proto).
package testpb
