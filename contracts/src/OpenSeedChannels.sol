// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/*
 * OpenSeedChannels: unidirectional USDC payment channels between an inference buyer (payer) and a seller.
 * The payer locks a deposit; a per-channel signer key signs EIP-712 SpendingAuth vouchers carrying a
 * cumulative amount; the seller redeems the latest voucher whenever it likes (claim) or at the end
 * (close), and the payer can take back the unspent remainder after a grace period that gives the seller
 * time to redeem. One token per deployment. Every external state-changing function is nonReentrant and
 * follows checks-effects-interactions; tokens that deliver less than the amount asked (fee-on-transfer)
 * are refused. Interface, events, errors and the decisions behind them: contracts/README.md.
 */

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// EIP-3009's receive variant, as Circle's FiatToken (Base USDC) exposes it.
interface IERC3009Receive {
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;
}

contract OpenSeedChannels is EIP712, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// Packed into five slots: {payer, closeAt, closed}, {seller, nonce}, {signer}, {commitment},
    /// {deposit, claimed}.
    struct Channel {
        address payer;
        uint64 closeAt; // 0 until the payer calls requestClose
        bool closed;
        address seller;
        uint64 nonce; // nonce of the last voucher redeemed; 0 before the first
        address signer;
        bytes32 commitment;
        uint128 deposit;
        uint128 claimed;
    }

    bytes32 public constant SPENDING_AUTH_TYPEHASH =
        keccak256("SpendingAuth(bytes32 channelId,uint256 cumulativeAmount,uint64 nonce,bytes32 metadataHash)");

    /// Upper bound on the constructor's grace so closeAt = now + grace can never overflow uint64.
    uint64 public constant MAX_CLOSE_GRACE = 30 days;

    IERC20 public immutable token;
    uint64 public immutable closeGrace;

    mapping(bytes32 channelId => Channel) private _channels;

    event ChannelOpened(
        bytes32 indexed channelId,
        address indexed payer,
        address indexed seller,
        address signer,
        bytes32 commitment,
        uint128 deposit
    );
    event ToppedUp(bytes32 indexed channelId, uint128 amount, uint128 deposit);
    event Claimed(
        bytes32 indexed channelId,
        uint256 cumulativeAmount,
        uint64 nonce,
        bytes32 metadataHash,
        uint128 amount,
        uint128 claimed
    );
    event CloseRequested(bytes32 indexed channelId, uint64 closeAt);
    event Closed(bytes32 indexed channelId, uint128 claimed, uint128 refund);
    event Withdrawn(bytes32 indexed channelId, uint128 claimed, uint128 refund);

    error ZeroAddress();
    error ZeroAmount();
    error InvalidCloseGrace(uint64 closeGrace);
    error ChannelExists(bytes32 channelId);
    error ChannelNotFound(bytes32 channelId);
    error ChannelIsClosed(bytes32 channelId);
    error NotPayer(address caller);
    error NotSeller(address caller);
    error CloseAlreadyRequested(uint64 closeAt);
    error CloseNotRequested();
    error GracePeriodOver(uint64 closeAt);
    error GracePeriodNotOver(uint64 closeAt);
    error InvalidSignature();
    error WrongSigner(address recovered);
    error StaleNonce(uint64 nonce, uint64 lastNonce);
    error NothingToClaim();
    error TransferAmountMismatch(uint256 expected, uint256 received);

    constructor(address token_, uint64 closeGrace_) EIP712("OpenSeedChannels", "1") {
        if (token_ == address(0)) revert ZeroAddress();
        if (closeGrace_ == 0 || closeGrace_ > MAX_CLOSE_GRACE) revert InvalidCloseGrace(closeGrace_);
        token = IERC20(token_);
        closeGrace = closeGrace_;
    }

    // ---------------------------------------------------------------------------------------------
    // Opening and funding

    /// Opens a channel funded from msg.sender's allowance.
    function open(address seller, address signer, bytes32 commitment, uint128 amount, bytes32 salt)
        external
        nonReentrant
        returns (bytes32 channelId)
    {
        channelId = _create(msg.sender, seller, signer, commitment, amount, salt);
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        _checkReceived(before, amount);
    }

    /// Opens a channel in one transaction from an EIP-3009 ReceiveWithAuthorization signed by `from`
    /// (65-byte r||s||v). The authorization's nonce must be openAuthorizationNonce(...) for exactly these
    /// channel parameters, so nobody who sees the authorization can redirect the funds to another
    /// seller or signer.
    function openWithAuthorization(
        address seller,
        address signer,
        bytes32 commitment,
        uint128 amount,
        bytes32 salt,
        address from,
        uint256 validAfter,
        uint256 validBefore,
        bytes calldata signature
    ) external nonReentrant returns (bytes32 channelId) {
        if (from == address(0)) revert ZeroAddress();
        if (signature.length != 65) revert InvalidSignature();
        channelId = _create(from, seller, signer, commitment, amount, salt);
        bytes32 authNonce = _openAuthNonce(channelId, signer, commitment);
        _receiveAuthorized(from, amount, validAfter, validBefore, authNonce, signature);
    }

    /// Adds to the deposit. Payer only, and only before a close has been requested.
    function topUp(bytes32 channelId, uint128 amount) external nonReentrant {
        Channel storage c = _live(channelId);
        if (msg.sender != c.payer) revert NotPayer(msg.sender);
        if (c.closeAt != 0) revert CloseAlreadyRequested(c.closeAt);
        if (amount == 0) revert ZeroAmount();
        uint128 deposit = c.deposit + amount;
        c.deposit = deposit;
        emit ToppedUp(channelId, amount, deposit);
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        _checkReceived(before, amount);
    }

    // ---------------------------------------------------------------------------------------------
    // Seller side

    /// Redeems a voucher without closing: pays the seller min(cumulativeAmount, deposit) - claimed.
    /// Reverts with NothingToClaim when that is zero, so a replayed voucher costs only gas.
    function claim(
        bytes32 channelId,
        uint256 cumulativeAmount,
        uint64 nonce,
        bytes32 metadataHash,
        bytes calldata signature
    ) external nonReentrant returns (uint128 paid) {
        Channel storage c = _live(channelId);
        if (msg.sender != c.seller) revert NotSeller(msg.sender);
        _checkGrace(c);
        paid = _redeem(c, channelId, cumulativeAmount, nonce, metadataHash, signature);
        if (paid == 0) revert NothingToClaim();
        token.safeTransfer(c.seller, paid);
    }

    /// Final redemption and settlement: pays the seller what the voucher adds (possibly nothing),
    /// refunds deposit - claimed to the payer and closes the channel. An empty signature closes without
    /// redeeming anything; the other voucher fields must then be zero.
    function close(
        bytes32 channelId,
        uint256 cumulativeAmount,
        uint64 nonce,
        bytes32 metadataHash,
        bytes calldata signature
    ) external nonReentrant {
        Channel storage c = _live(channelId);
        if (msg.sender != c.seller) revert NotSeller(msg.sender);
        _checkGrace(c);
        uint128 paid;
        if (signature.length == 0) {
            if (cumulativeAmount != 0 || nonce != 0 || metadataHash != bytes32(0)) revert InvalidSignature();
        } else {
            paid = _redeem(c, channelId, cumulativeAmount, nonce, metadataHash, signature);
        }
        c.closed = true;
        uint128 claimed = c.claimed;
        uint128 refund = c.deposit - claimed;
        emit Closed(channelId, claimed, refund);
        if (paid != 0) token.safeTransfer(c.seller, paid);
        if (refund != 0) token.safeTransfer(c.payer, refund);
    }

    // ---------------------------------------------------------------------------------------------
    // Payer side

    /// Starts the grace period after which the payer may withdraw; the seller can redeem until then.
    function requestClose(bytes32 channelId) external nonReentrant {
        Channel storage c = _live(channelId);
        if (msg.sender != c.payer) revert NotPayer(msg.sender);
        if (c.closeAt != 0) revert CloseAlreadyRequested(c.closeAt);
        uint64 closeAt = uint64(block.timestamp) + closeGrace;
        c.closeAt = closeAt;
        emit CloseRequested(channelId, closeAt);
    }

    /// After the grace period: refunds deposit - claimed to the payer and closes the channel.
    function withdraw(bytes32 channelId) external nonReentrant {
        Channel storage c = _live(channelId);
        if (msg.sender != c.payer) revert NotPayer(msg.sender);
        uint64 closeAt = c.closeAt;
        if (closeAt == 0) revert CloseNotRequested();
        if (block.timestamp < closeAt) revert GracePeriodNotOver(closeAt);
        c.closed = true;
        uint128 claimed = c.claimed;
        uint128 refund = c.deposit - claimed;
        emit Withdrawn(channelId, claimed, refund);
        if (refund != 0) token.safeTransfer(c.payer, refund);
    }

    // ---------------------------------------------------------------------------------------------
    // Views

    function getChannel(bytes32 channelId)
        external
        view
        returns (
            address payer,
            address seller,
            address signer,
            bytes32 commitment,
            uint128 deposit,
            uint128 claimed,
            uint64 closeAt,
            bool closed
        )
    {
        Channel storage c = _channels[channelId];
        return (c.payer, c.seller, c.signer, c.commitment, c.deposit, c.claimed, c.closeAt, c.closed);
    }

    /// Nonce of the last voucher redeemed on the channel (0 before the first); the next one must not be
    /// lower.
    function lastNonce(bytes32 channelId) external view returns (uint64) {
        return _channels[channelId].nonce;
    }

    function computeChannelId(address payer, address seller, bytes32 salt) public view returns (bytes32) {
        return keccak256(abi.encode(block.chainid, address(this), payer, seller, salt));
    }

    /// The EIP-3009 nonce that openWithAuthorization requires for these channel parameters.
    function openAuthorizationNonce(address from, address seller, address signer, bytes32 commitment, bytes32 salt)
        external
        view
        returns (bytes32)
    {
        return _openAuthNonce(computeChannelId(from, seller, salt), signer, commitment);
    }

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// The EIP-712 digest the channel signer signs, for clients to cross-check their own encoder.
    function hashSpendingAuth(bytes32 channelId, uint256 cumulativeAmount, uint64 nonce, bytes32 metadataHash)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(abi.encode(SPENDING_AUTH_TYPEHASH, channelId, cumulativeAmount, nonce, metadataHash))
        );
    }

    // ---------------------------------------------------------------------------------------------
    // Internals

    function _create(address payer, address seller, address signer, bytes32 commitment, uint128 amount, bytes32 salt)
        private
        returns (bytes32 channelId)
    {
        if (seller == address(0) || signer == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        channelId = computeChannelId(payer, seller, salt);
        Channel storage c = _channels[channelId];
        if (c.payer != address(0)) revert ChannelExists(channelId);
        c.payer = payer;
        c.seller = seller;
        c.signer = signer;
        c.commitment = commitment;
        c.deposit = amount;
        emit ChannelOpened(channelId, payer, seller, signer, commitment, amount);
    }

    function _openAuthNonce(bytes32 channelId, address signer, bytes32 commitment) private pure returns (bytes32) {
        return keccak256(abi.encode(channelId, signer, commitment));
    }

    function _live(bytes32 channelId) private view returns (Channel storage c) {
        c = _channels[channelId];
        if (c.payer == address(0)) revert ChannelNotFound(channelId);
        if (c.closed) revert ChannelIsClosed(channelId);
    }

    /// Once the grace period has run out the remainder belongs to the payer alone.
    function _checkGrace(Channel storage c) private view {
        uint64 closeAt = c.closeAt;
        if (closeAt != 0 && block.timestamp >= closeAt) revert GracePeriodOver(closeAt);
    }

    /// Verifies the voucher and books what it adds; the caller moves the tokens.
    function _redeem(
        Channel storage c,
        bytes32 channelId,
        uint256 cumulativeAmount,
        uint64 nonce,
        bytes32 metadataHash,
        bytes calldata signature
    ) private returns (uint128 paid) {
        bytes32 digest = hashSpendingAuth(channelId, cumulativeAmount, nonce, metadataHash);
        // tryRecoverCalldata refuses lengths other than 65, v other than 27/28 and s above n/2.
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (err != ECDSA.RecoverError.NoError) revert InvalidSignature();
        if (recovered != c.signer) revert WrongSigner(recovered);
        // Equal is allowed: the same voucher pays more after a top-up when it exceeded the old deposit.
        if (nonce < c.nonce) revert StaleNonce(nonce, c.nonce);
        c.nonce = nonce;

        uint128 deposit = c.deposit;
        // casting to 'uint128' is safe because the branch is taken only when it is below a uint128
        // forge-lint: disable-next-line(unsafe-typecast)
        uint128 cap = cumulativeAmount < deposit ? uint128(cumulativeAmount) : deposit;
        uint128 claimed = c.claimed;
        if (cap <= claimed) return 0;
        paid = cap - claimed;
        c.claimed = cap;
        emit Claimed(channelId, cumulativeAmount, nonce, metadataHash, paid, cap);
    }

    function _receiveAuthorized(
        address from,
        uint128 amount,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 authNonce,
        bytes calldata signature
    ) private {
        (uint8 v, bytes32 r, bytes32 s) = ECDSA.parseCalldata(signature);
        uint256 before = token.balanceOf(address(this));
        IERC3009Receive(address(token))
            .receiveWithAuthorization(from, address(this), amount, validAfter, validBefore, authNonce, v, r, s);
        _checkReceived(before, amount);
    }

    function _checkReceived(uint256 before, uint128 amount) private view {
        uint256 balance = token.balanceOf(address(this));
        uint256 received = balance > before ? balance - before : 0;
        if (received != amount) revert TransferAmountMismatch(amount, received);
    }
}
