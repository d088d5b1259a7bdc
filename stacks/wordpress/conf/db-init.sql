-- Run by mariadbd itself at start (--init-file), before it accepts connections: the site's database and user.
-- The user connects over TCP from 127.0.0.1 only; its password is not a secret (loopback, throw-away data).
CREATE DATABASE IF NOT EXISTS wordpress CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'wordpress'@'127.0.0.1' IDENTIFIED BY 'wordpress';
GRANT ALL PRIVILEGES ON wordpress.* TO 'wordpress'@'127.0.0.1';
