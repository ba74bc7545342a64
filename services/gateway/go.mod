module github.com/dsync-dev/dsync/services/gateway

go 1.26
