"""OCDS 1.1 export of the purchasing processes (开放合同数据标准): releases per stage and a
compiled record per process, served over HTTP and written to a file by the CLI."""
