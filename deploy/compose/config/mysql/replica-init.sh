#!/bin/sh
# Run once by the MySQL image when the replica's data directory is new: follow the primary by GTID.
# The replication user is the root account of this miniature stack; a real deployment creates a
# dedicated user with REPLICATION SLAVE only.
set -e
mysql -uroot -p"$MYSQL_ROOT_PASSWORD" <<SQL
CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'mysql-primary', SOURCE_USER = 'root', SOURCE_PASSWORD = '$MYSQL_ROOT_PASSWORD', SOURCE_AUTO_POSITION = 1, GET_SOURCE_PUBLIC_KEY = 1;
START REPLICA;
SQL
