-- Service providers of the marketplace register with the role 'provider'.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('customer', 'provider', 'merchant', 'admin'));
