module corelet-peers-go

go 1.19
