module github.com/dsync-dev/dsync/services/dsync

go 1.26
