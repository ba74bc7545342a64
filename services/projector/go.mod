module github.com/dsync-dev/dsync/services/projector

go 1.26
