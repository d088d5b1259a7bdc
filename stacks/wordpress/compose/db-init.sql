-- Run by mariadbd itself at start (--init-file), before it accepts connections: the site's database and user,
-- reached over the project's network (the process recipe's user is limited to 127.0.0.1). Not a secret: the
-- data is throw-away and the database publishes no port.
CREATE DATABASE IF NOT EXISTS wordpress CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'wordpress'@'%' IDENTIFIED BY 'wordpress';
GRANT ALL PRIVILEGES ON wordpress.* TO 'wordpress'@'%';
