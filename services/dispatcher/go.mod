module github.com/dsync-dev/dsync/services/dispatcher

go 1.26
